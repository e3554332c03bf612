"""`userutil`: accounts from the shell (INTERFACE.md). Works with or without
running services: it writes the store directly and services read it per request."""
from __future__ import annotations

import click

from ..mail.dkimkeys import ensure_keys
from ..services.accounts import AccountError, Accounts
from .common import fail, home_option, resolve_home, store_or_exit


def _fmt_size(n: int) -> str:
    if n == 0:
        return "unlimited"
    for unit, mult in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


def _accounts(home):
    settings, store = store_or_exit(home)
    return Accounts(store, settings.server.domain, int(settings.limits.default_quota))


def _run(fn):
    try:
        return fn()
    except AccountError as e:
        fail(str(e))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", default=None, metavar="DIR", help="The coremail home.")
@click.pass_context
def cli(ctx, home):
    """Manage coremail users, domains, aliases and forwards."""
    ctx.obj = {"home": home}


@cli.command()
@click.argument("address")
@click.option("--password", required=True, help="The new user's password.")
@click.option("--quota", default=None, help="Mailbox size limit: bytes or 500M, 2G (0 = unlimited).")
@click.option("--name", default="", help="Display name.")
@home_option
def add(home, address, password, quota, name):
    """Add a user."""
    a = _accounts(home)
    u = _run(lambda: a.add_user(address, password, quota=quota, name=name))
    click.echo(f"added {u.address} (quota {_fmt_size(u.quota)})")


@cli.command()
@click.argument("address")
@click.option("--password", required=True)
@home_option
def passwd(home, address, password):
    """Change a user's password."""
    a = _accounts(home)
    u = _run(lambda: a.set_password(address, password))
    click.echo(f"password changed for {u.address}")


@cli.command("del")
@click.argument("address")
@home_option
def delete(home, address):
    """Delete a user and all their mail."""
    a = _accounts(home)
    _run(lambda: a.delete_user(address))
    click.echo(f"deleted {address.strip()}")


@cli.command("list")
@click.argument("domain", required=False)
@home_option
def list_(home, domain):
    """List users (of one domain)."""
    a = _accounts(home)
    for u in _run(lambda: a.list_users(domain)):
        flags = ",".join(f for f, on in (("admin", u.admin), ("disabled", not u.enabled)) if on)
        click.echo(f"{u.address}\t{_fmt_size(u.quota)}\t{u.used_bytes}\t{flags}".rstrip())


@cli.command()
@click.argument("address")
@home_option
def show(home, address):
    """Show one user."""
    a = _accounts(home)
    u = _run(lambda: a.get(address))
    fwd = a.store.get_forward(u.id)
    click.echo(f"address: {u.address}\nname: {u.name}\nquota: {_fmt_size(u.quota)}\n"
               f"used: {u.used_bytes} bytes in {u.used_messages} messages\n"
               f"enabled: {'yes' if u.enabled else 'no'}\nadmin: {'yes' if u.admin else 'no'}\n"
               f"forward: {(fwd.target + (' (keeping a copy)' if fwd.keep else '')) if fwd else 'off'}")


@cli.command()
@click.argument("address")
@click.option("--grant", "grant", flag_value=True, default=None)
@click.option("--revoke", "grant", flag_value=False)
@home_option
def admin(home, address, grant):
    """Grant or revoke webadmin rights."""
    if grant is None:
        fail("say --grant or --revoke", 2)
    a = _accounts(home)
    u = _run(lambda: a.update(address, admin=grant))
    click.echo(f"{u.address} {'is now' if grant else 'is no longer'} an administrator")


@cli.command()
@click.argument("address")
@home_option
def disable(home, address):
    """Stop a user from logging in (mail is still accepted)."""
    a = _accounts(home)
    u = _run(lambda: a.update(address, enabled=False))
    click.echo(f"{u.address} disabled")


@cli.command()
@click.argument("address")
@home_option
def enable(home, address):
    """Allow a disabled user to log in again."""
    a = _accounts(home)
    u = _run(lambda: a.update(address, enabled=True))
    click.echo(f"{u.address} enabled")


@cli.group()
def domain():
    """Local domains."""


@domain.command("add")
@click.argument("name")
@home_option
def domain_add(home, name):
    a = _accounts(home)
    d = _run(lambda: a.add_domain(name))
    keys = ensure_keys(home, d.name)
    click.echo(f"added domain {d.name} (DKIM selectors {', '.join(k.selector for k in keys)}; "
               f"`coremail dns {d.name}` prints the records to publish)")


@domain.command("del")
@click.argument("name")
@home_option
def domain_del(home, name):
    a = _accounts(home)
    _run(lambda: a.delete_domain(name))
    click.echo(f"deleted domain {name.strip().lower()}")


@domain.command("list")
@home_option
def domain_list(home):
    for d in _accounts(home).list_domains():
        click.echo(d)


@cli.group()
def alias():
    """Aliases: an address that delivers to one or more targets."""


@alias.command("add")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("target")
@home_option
def alias_add(home, alias_address, target):
    a = _accounts(home)
    al = _run(lambda: a.add_alias(alias_address, target))
    click.echo(f"added alias {al.address} -> {al.target}")


@alias.command("del")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("target", required=False)
@home_option
def alias_del(home, alias_address, target):
    a = _accounts(home)
    n = _run(lambda: a.delete_alias(alias_address, target))
    click.echo(f"deleted {n} alias entr{'y' if n == 1 else 'ies'}")


@alias.command("list")
@click.argument("domain_name", metavar="[DOMAIN]", required=False)
@home_option
def alias_list(home, domain_name):
    for al in _run(lambda: _accounts(home).list_aliases(domain_name)):
        click.echo(f"{al.address}\t{al.target}")


@cli.command()
@click.argument("address")
@click.option("--to", "target", default=None, help="Forward all mail to this address.")
@click.option("--keep", is_flag=True, help="Also keep a copy in this mailbox.")
@click.option("--off", is_flag=True, help="Stop forwarding.")
@home_option
def forward(home, address, target, keep, off):
    """Auto-forward a user's mail, with or without a local copy."""
    a = _accounts(home)
    if off == bool(target):
        fail("say either --to TARGET [--keep] or --off", 2)
    if off:
        was = _run(lambda: a.clear_forward(address))
        click.echo("forwarding turned off" if was else "forwarding was not on")
        return
    _run(lambda: a.set_forward(address, target, keep))
    click.echo(f"forwarding {address.strip()} to {target.strip()}"
               + (" (keeping a copy)" if keep else " (no local copy)"))


def main() -> None:
    cli(prog_name="userutil")


__all__ = ["main", "resolve_home"]
