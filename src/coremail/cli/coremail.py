"""`coremail`: init, service control, configuration and the queue
(INTERFACE.md). Thin: the work is in services/ and supervisor/."""
from __future__ import annotations


import click

from ..app import available_services
from ..config import ConfigError
from ..mail.dkimkeys import DkimKeyError, create_keys, remove_key
from ..services import dnsrecords
from ..services.accounts import AccountError, Accounts
from ..services.home import HomeExists, init_home
from ..services.queue import QueueAdmin
from ..services.settings import get_value, set_value
from ..supervisor import control, homelock
from .common import fail, home_option, settings_or_exit, store_or_exit
from .filter import filter_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", default=None, metavar="DIR", help="The coremail home.")
@click.pass_context
def cli(ctx, home):
    """Control the coremail mail system."""
    ctx.obj = {"home": home}


@cli.command()
@click.option("--domain", required=True, help="The primary mail domain.")
@click.option("--hostname", default=None, help="This server's name (default mail.DOMAIN).")
@click.option("--admin-password", default=None, help="Else a strong one is generated and printed once.")
@click.option("--unprivileged-ports/--standard-ports", default=None,
              help="Force the 25xx ports or the standard ones (default: by privilege).")
@home_option
def init(home, domain, hostname, admin_password, unprivileged_ports):
    """Create a new home: configuration, certificate, domain and admin."""
    try:
        r = init_home(home, domain, hostname, admin_password,
                      None if unprivileged_ports is None else not unprivileged_ports)
    except HomeExists as e:
        fail(str(e))
    except (AccountError, ConfigError) as e:
        fail(str(e), 2)
    click.echo(f"initialised {r.home} for {r.domain} (hostname {r.hostname})")
    if not r.privileged:
        click.echo("not allowed to use ports below 1024: using unprivileged ports "
                   + ", ".join(f"{k} {v}" for k, v in r.ports.items()))
    if r.password:
        click.echo(f"admin account: {r.admin}  password: {r.password}  (shown once; keep it)")
    else:
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
@home_option
def status(home):
    """A line per service: name, state, pid, addresses."""
    reply = _simple(home, "status", None)
    click.echo(f"supervisor\trunning\t{reply['pid']}")
    for s in reply["services"]:
        addrs = " ".join(f"{k}={v}" for k, v in s["addresses"].items())
        extra = f"\t{s['error']}" if s.get("error") and s["state"] != "running" else ""
        click.echo(f"{s['name']}\t{s['state']}\t{s['pid'] or '-'}\t{addrs}{extra}".rstrip())


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
        set_value(home, key, value)
    except ConfigError as e:
        fail(str(e), 2)
    click.echo(f"{key} = {value} (running services pick it up within a few seconds)")


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
    click.echo(f"{n} message(s) will be retried now")


@queue.command("delete")
@click.argument("queue_id")
@home_option
def queue_delete(home, queue_id):
    """Delete one queued message (no bounce is sent)."""
    _, store = store_or_exit(home)
    if not QueueAdmin(store).delete(queue_id):
        fail(f"no queued message {queue_id}")
    click.echo(f"deleted {queue_id}")


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


cli.add_command(filter_group)


def main() -> None:
    cli(prog_name="coremail")
