"""`coremail filter list/add/del/test` (INTERFACE.md): thin over
services.filters, which the webadmin uses too."""
from __future__ import annotations

from pathlib import Path

import click

from ..services.filters import FilterAdmin, RuleError
from .common import fail, home_option, store_or_exit


@click.group("filter")
def filter_group():
    """Allow/block lists and content rules of the anti-spam filter."""


@filter_group.command("list")
@home_option
def filter_list(home):
    """One line per rule: id, kind, pattern, action, scope, hits."""
    settings, store = store_or_exit(home)
    lines = FilterAdmin(store, settings).lines()
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("no filter rules")


@filter_group.command("add")
@click.argument("kind", type=click.Choice(["ip", "sender", "keyword", "header"],
                                          case_sensitive=False))
@click.argument("pattern")
@click.option("--action", default="reject", show_default=True,
              help="reject, junk, allow or score:N")
@click.option("--user", default=None, metavar="ADDRESS",
              help="A rule of this user only, for mail to this user.")
@click.option("--note", default="", metavar="TEXT", help="Why the rule is there.")
@home_option
def filter_add(home, kind, pattern, action, user, note):
    """Add a rule: ip (address or CIDR), sender (address or @domain),
    keyword (word or phrase), header ("Name: regex")."""
    settings, store = store_or_exit(home)
    try:
        r = FilterAdmin(store, settings).add(kind, pattern, action, user=user, note=note)
    except RuleError as e:
        fail(str(e), 2)
    click.echo(f"added rule {r.id}: {r.kind} {r.pattern} {action.lower()} "
               f"({r.user or 'server'})")


@filter_group.command("del")
@click.argument("rule_id", type=int)
@home_option
def filter_del(home, rule_id):
    """Delete a rule by its id (see `filter list`)."""
    settings, store = store_or_exit(home)
    if not FilterAdmin(store, settings).delete(rule_id):
        fail(f"no filter rule {rule_id}")
    click.echo(f"deleted rule {rule_id}")


@filter_group.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ip", default="127.0.0.1", show_default=True, help="The client's address.")
@click.option("--from", "sender", default=None, metavar="ADDR",
              help="The envelope sender (default: the From header).")
@click.option("--to", "recipients", multiple=True, metavar="ADDR",
              help="A recipient (default: the To and Cc headers).")
@click.option("--helo", default="", metavar="NAME", help="The client's HELO name.")
@home_option
def filter_test(home, file, ip, sender, recipients, helo):
    """What would happen to this message, check by check; changes nothing."""
    settings, store = store_or_exit(home)
    try:
        content = file.read_bytes()
    except OSError as e:
        fail(f"cannot read {file}: {e}")
    report = FilterAdmin(store, settings).test(content, ip=ip, sender=sender,
                                               recipients=list(recipients), helo=helo)
    for line in report.lines(settings):
        click.echo(line)
