"""`coremail`: init, service control, configuration and the queue
(INTERFACE.md). Thin: the work is in services/ and supervisor/."""
from __future__ import annotations

import getpass
from pathlib import Path

import click

from ..app import available_services
from ..config import ConfigError
from ..mail.dkimkeys import DkimKeyError, create_keys, remove_key
from ..services import dnsrecords, sharedconf
from ..services.accounts import AccountError, Accounts
from ..services.audit import Audit
from ..services.home import HomeExists, JoinError, init_home, join_home
from ..services.queue import QueueAdmin
from ..services.settings import get_value, set_value
from ..services.spamlearn import learn_paths
from ..store.interfaces import GLOBAL_MODEL
from ..supervisor import control, homelock
from . import diagnose
from .common import fail, home_option, settings_or_exit, store_or_exit
from .filter import filter_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", default=None, metavar="DIR", help="The coremail home.")
@click.pass_context
def cli(ctx, home):
    """Control the coremail mail system."""
    ctx.obj = {"home": home}


@cli.command()
@click.option("--domain", default=None, help="The primary mail domain.")
@click.option("--hostname", default=None, help="This server's name (default mail.DOMAIN).")
@click.option("--admin-password", default=None, help="Else a strong one is generated and printed once.")
@click.option("--unprivileged-ports/--standard-ports", default=None,
              help="Force the 25xx ports or the standard ones (default: by privilege).")
@click.option("--database", default="", metavar="URL",
              help="postgresql+psycopg://USER:PW@HOST/DB: the first node of several.")
@click.option("--blobs", default="", metavar="DIR",
              help="The message files (default DIR/data/blobs); several nodes: a shared mount.")
@click.option("--join", "join", default=None, metavar="DATABASE_URL",
              help="Add a node to the system in this PostgreSQL database (with --blobs, --hostname).")
@home_option
def init(home, domain, hostname, admin_password, unprivileged_ports, database, blobs, join):
    """Create a new home: configuration, certificate, domain and admin."""
    privileged = None if unprivileged_ports is None else not unprivileged_ports
    try:
        if join is not None:
            if domain or database or admin_password:
                fail("--join takes no --domain, --database or --admin-password: the node "
                     "serves what the joined system holds", 2)
            if not hostname:
                fail("--join needs --hostname: each node has its own name", 2)
            r = join_home(home, join, blobs, hostname, privileged)
        else:
            if not domain:
                fail("init needs --domain (or --join DATABASE_URL to add a node)", 2)
            r = init_home(home, domain, hostname, admin_password, privileged,
                          database=database, blobs=blobs)
    except HomeExists as e:
        fail(str(e))
    except (AccountError, ConfigError, JoinError) as e:
        fail(str(e), 2)
    if join is not None:
        click.echo(f"joined {r.home} to the system serving {r.domain} (hostname {r.hostname})")
    else:
        click.echo(f"initialised {r.home} for {r.domain} (hostname {r.hostname})")
    if not r.privileged:
        click.echo("not allowed to use ports below 1024: using unprivileged ports "
                   + ", ".join(f"{k} {v}" for k, v in r.ports.items()))
    if r.password:
        click.echo(f"admin account: {r.admin}  password: {r.password}  (shown once; keep it)")
    elif join is None:
        click.echo(f"admin account: {r.admin}")


def _check_service(name: str | None) -> None:
    valid = available_services()
    if name is not None and name not in valid:
        fail(f"unknown service {name!r}; valid names: {', '.join(valid)}", 2)


def _print_results(results: list[dict]) -> bool:
    ok = True
    for r in results:
        if r.get("ok"):
            addrs = " ".join(f"{k}={v}" for k, v in (r.get("addresses") or {}).items())
            click.echo(f"{r['name']}: {'already running' if r.get('already') else 'started'}"
                       + (f"  {addrs}" if addrs else ""))
        else:
            ok = False
            click.echo(f"{r['name']}: FAILED: {r.get('error')}", err=True)
    return ok


@cli.command()
@click.argument("service", required=False)
@home_option
def start(home, service):
    """Start the supervisor and every service (or one service)."""
    _check_service(service)
    settings_or_exit(home)
    _, store = store_or_exit(home)  # migrations run once here, not in every worker
    store.blobs.clean_tmp()
    if store.shared:   # several nodes: the certificate, DKIM keys, SRS secret alike
        sharedconf.sync(home, store)
    store.close()
    try:
        was = control.running_pid(home)
        if was is not None:
            click.echo(f"supervisor: already running (pid {was})")
        else:
            _, stopped = control.ensure_supervisor(home)
            if stopped:
                click.echo(f"stopped {len(stopped)} leftover process(es) of an earlier run "
                           f"of this home (pids {' '.join(map(str, stopped))})")
        reply = control.request(home, {"cmd": "start", "service": service})
    except (control.NotRunning, homelock.Busy) as e:
        fail(str(e))
    if "results" not in reply:
        fail(reply.get("error", "start failed"))
    if not _print_results(reply["results"]):
        fail("some services did not start; see the lines above and the logs in "
             f"{home / 'logs'}")


def _simple(home, cmd: str, service: str | None):
    _check_service(service)
    try:
        reply = control.request(home, {"cmd": cmd, "service": service})
    except control.NotRunning as e:
        fail(str(e))
    if not reply.get("ok") and "results" not in reply:
        fail(reply.get("error", f"{cmd} failed"))
    return reply


@cli.command()
@click.argument("service")
@home_option
def stop(home, service):
    """Stop one service gracefully (the others keep serving)."""
    _simple(home, "stop", service)
    click.echo(f"{service}: stopped")


@cli.command()
@click.argument("service")
@home_option
def restart(home, service):
    """Restart one service."""
    reply = _simple(home, "restart", service)
    if not _print_results(reply["results"]):
        fail(f"{service} did not restart")


@cli.command()
@click.option("--all", "every", is_flag=True, help="Every node of a shared system.")
@home_option
def status(home, every):
    """A line per service: name, state, pid, addresses."""
    if every:
        _status_all(home)
        return
    reply = _simple(home, "status", None)
    click.echo(f"supervisor\trunning\t{reply['pid']}")
    for s in reply["services"]:
        addrs = " ".join(f"{k}={v}" for k, v in s["addresses"].items())
        extra = f"\t{s['error']}" if s.get("error") and s["state"] != "running" else ""
        click.echo(f"{s['name']}\t{s['state']}\t{s['pid'] or '-'}\t{addrs}{extra}".rstrip())
    clamd_line(home)


def _status_all(home) -> None:
    """A line per service of every node, each starting with the node's name."""
    import time

    from ..supervisor.heartbeat import STALE_AFTER
    _, store = store_or_exit(home)
    try:
        nodes = store.node_list() if store.shared else []
    finally:
        store.close()
    if not nodes:   # one node: this one, as `status` shows it
        reply = _simple(home, "status", None)
        nodes_lines = [("supervisor", "running", str(reply["pid"]), "")] + [
            (s["name"], s["state"], str(s["pid"] or "-"),
             " ".join(f"{k}={v}" for k, v in s["addresses"].items()))
            for s in reply["services"]]
        name = settings_or_exit(home).server.hostname
        for line in nodes_lines:
            click.echo("\t".join((name, *line)).rstrip())
        return
    now = time.time()
    for n in nodes:
        age = now - n.heartbeat
        stale = age > STALE_AFTER
        click.echo(f"{n.hostname}\tnode\t{'not reporting' if stale else 'reporting'}"
                   f"\tlast heartbeat {age:.0f}s ago")
        for s in n.services:
            state = f"{s['state']} (as of {age:.0f}s ago)" if stale else s["state"]
            addrs = " ".join(f"{k}={v}" for k, v in (s.get("addresses") or {}).items())
            click.echo(f"{n.hostname}\t{s['name']}\t{state}\t{s.get('pid') or '-'}"
                       f"\t{addrs}".rstrip())


def clamd_line(home) -> None:
    """The virus scanner, when antivirus.clamd names one: does it answer?"""
    import asyncio

    from ..config import load_settings
    from ..pipeline.antivirus.clamd import ClamdError, probe
    try:
        address = load_settings(home).antivirus.clamd
    except ConfigError:
        return
    if not address:
        return
    try:
        version = asyncio.run(probe(address))
        click.echo(f"clamd\tanswering\t-\t{address}\t{version}")
    except (ClamdError, ValueError) as e:
        click.echo(f"clamd\tnot answering\t-\t{address}\t{e}")


@cli.command()
@home_option
def shutdown(home):
    """Stop every service and the supervisor."""
    if not control.is_running(home):
        # No supervisor, but maybe what a killed one left: stop that too.
        try:
            stopped = control.stop_leftovers(home)
        except homelock.Busy as e:
            fail(str(e))
        if stopped:
            click.echo(f"stopped {len(stopped)} leftover process(es) of this home "
                       f"(pids {' '.join(map(str, stopped))})")
            click.echo("coremail shut down")
            return
    _simple(home, "shutdown", None)
    if not control.wait_gone(home):
        fail("the supervisor did not exit in time")
    click.echo("coremail shut down")


@cli.group()
def config():
    """Read and change configuration keys."""


@config.command("get")
@click.argument("key")
@home_option
def config_get(home, key):
    try:
        click.echo(get_value(settings_or_exit(home), key))
    except ConfigError as e:
        fail(str(e), 2)


@config.command("set")
@click.argument("key")
@click.argument("value")
@home_option
def config_set(home, key, value):
    try:
        old = get_value(settings_or_exit(home), key)
        new = get_value(set_value(home, key, value), key)
    except ConfigError as e:
        fail(str(e), 2)
    _audit(home, "setting.set", key, old, new)
    click.echo(f"{key} = {value} (running services pick it up within a few seconds)")


def _actor() -> str:
    """Who made a change from the shell, for the audit log."""
    return f"{getpass.getuser()} (shell)"


def _audit(home, action: str, target: str, old: str, new: str) -> None:
    """The change in the audit log the webadmin shows; a store that cannot
    be opened does not undo a change already made."""
    try:
        _, store = store_or_exit(home)
    except SystemExit:
        return
    try:
        Audit(store).record(_actor(), "", action, target, old, new)
    finally:
        store.close()


@cli.group()
def queue():
    """The outbound queue."""


@queue.command("list")
@home_option
def queue_list(home):
    """One line per queued message: id, age, sender, recipients, last error."""
    _, store = store_or_exit(home)
    lines = QueueAdmin(store).lines()
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("the queue is empty")


@queue.command("flush")
@home_option
def queue_flush(home):
    """Retry everything queued now."""
    _, store = store_or_exit(home)
    n = QueueAdmin(store).flush()
    Audit(store).record(_actor(), "", "queue.flush", "(all)", "", f"{n} retried now")
    click.echo(f"{n} message(s) will be retried now")


@queue.command("delete")
@click.argument("queue_id")
@home_option
def queue_delete(home, queue_id):
    """Delete one queued message (no bounce is sent)."""
    _, store = store_or_exit(home)
    if not QueueAdmin(store).delete(queue_id, by=f"{getpass.getuser()} with `coremail queue delete`"):
        fail(f"no queued message {queue_id}")
    Audit(store).record(_actor(), "", "queue.delete", queue_id, "queued", "")
    click.echo(f"deleted {queue_id}")


cli.add_command(filter_group)


@cli.command("dns")
@click.argument("domain")
@click.option("--ip", default=None, metavar="ADDRESS",
              help="This server's public address (default: listen.address when it names one).")
@click.option("--rotate", is_flag=True,
              help="Make a new DKIM key pair under new selectors; the old ones stay published.")
@click.option("--remove", "remove", default=None, metavar="SELECTOR",
              help="Delete a retired DKIM key (after its record may be withdrawn).")
@home_option
def dns_records(home, domain, ip, rotate, remove):
    """The DNS records to publish for DOMAIN: MX, SPF, DKIM, DMARC, PTR."""
    settings, store = store_or_exit(home)
    try:
        domains = Accounts(store, settings.server.domain, 0).list_domains()
    finally:
        store.close()
    name = domain.strip().lower().rstrip(".")
    if name not in domains:
        fail(f"{name} is not a local domain (userutil domain add {name})", 2)
    try:
        if rotate:
            new = create_keys(home, name)
            click.echo("; new DKIM selectors " + ", ".join(k.selector for k in new)
                       + " sign from now on; publish them now")
        if remove:
            remove_key(home, name, remove)
            click.echo(f"; removed DKIM selector {remove}: withdraw its record")
        address = dnsrecords.server_address(settings, ip)
        if ip and address is None:
            fail(f"--ip {ip}: not an IP address", 2)
        click.echo(dnsrecords.render(dnsrecords.records(home, settings, name, address),
                                     address), nl=False)
    except DkimKeyError as e:
        fail(str(e))


@cli.group()
def spam():
    """The intelligent score (the trainable spam classifier)."""


@spam.command("learn")
@click.option("--spam", "kind", flag_value="spam", help="The messages are spam.")
@click.option("--ham", "kind", flag_value="ham", help="The messages are good mail.")
@click.option("--user", default=None, metavar="ADDRESS",
              help="Train this user's own model (else the global one).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@home_option
def spam_learn(home, kind, user, paths):
    """Train on message files, Maildirs and mbox files (FILE|DIR...).

    A file starting with "From " is read as an mbox; a directory with cur/
    and new/ as a Maildir; any other directory file by file. A message
    already learnt the same way is skipped; one learnt the other way moves."""
    if kind is None:
        fail("say what the messages are: --spam or --ham", 2)
    _, store = store_or_exit(home)
    owner, name = GLOBAL_MODEL, "the global model"
    if user is not None:
        try:
            u = Accounts(store).get(user)
        except AccountError as e:
            fail(str(e), 2)
        owner, name = u.id, f"the model of {u.address}"
    report = learn_paths(store, list(paths), kind == "spam", owner, name)
    for line in report.lines():
        click.echo(line)
    if report.learnt + report.relearnt + report.known == 0:
        fail("no message could be read from " + " ".join(map(str, paths)))


# Finding out what happened (cli/diagnose.py).
cli.add_command(diagnose.trace)
cli.add_command(diagnose.doctor)


def main() -> None:
    cli(prog_name="coremail")
