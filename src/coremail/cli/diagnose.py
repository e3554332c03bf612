"""`coremail trace` and `coremail doctor`: what happened to a message, and
what stands between this server and working mail (INTERFACE.md, "Finding
out what happened"). Thin: the work is in services/trace.py and
services/doctor.py."""
from __future__ import annotations

import sys
import time

import click

from ..config import parse_duration
from ..services.doctor import Doctor
from ..services.trace import MessageTrace, render_all
from ..supervisor import control
from .common import fail, home_option, store_or_exit


@click.command()
@click.argument("query")
@click.option("--since", default=None, metavar="DURATION",
              help="Only messages seen within this time (e.g. 24h, 7d); default: all kept.")
@home_option
def trace(home, query, since):
    """What happened to a message: by queue id, Message-ID or address."""
    try:
        cutoff = time.time() - parse_duration(since) if since else 0.0
    except ValueError as e:
        fail(f"--since: {e}", 2)
    _, store = store_or_exit(home)
    try:
        click.echo(render_all(MessageTrace(store).find(query, since=cutoff), query))
    finally:
        store.close()


@click.command()
@click.option("--domain", "domains", multiple=True, metavar="DOMAIN",
              help="Check this domain only (may be repeated); default: every local domain.")
@click.option("--probe", default=None, metavar="HOST",
              help="Also try an outbound connection to HOST on port 25.")
@home_option
def doctor(home, domains, probe):
    """Check the usual causes of "can't send / can't receive"; exit 1 on a fail."""
    settings, store = store_or_exit(home)
    try:
        results = Doctor(home, settings, store,
                         status=lambda: control.request(home, {"cmd": "status"}, timeout=10)
                         ).run(domains=list(domains), probe=probe)
    finally:
        store.close()
    for r in results:
        click.echo(r.line())
    failed = sum(r.status == "fail" for r in results)
    warned = sum(r.status == "warn" for r in results)
    click.echo(f"{len(results)} checks: {failed} failed, {warned} warnings")
    sys.exit(1 if failed else 0)
