"""What both commands share: finding the home, opening the store, and
turning errors into one clear line and an exit code (no tracebacks)."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from ..config import ConfigError, Settings, load_settings
from ..store import Store, open_store


def resolve_home(value: str | None) -> Path:
    return Path(value or os.environ.get("COREMAIL_HOME") or "var").resolve()


def home_option(f):
    """--home on every command (else $COREMAIL_HOME, else ./var)."""
    @click.option("--home", "home", default=None, metavar="DIR",
                  help="The coremail home (default: $COREMAIL_HOME or ./var).")
    @click.pass_context
    @functools.wraps(f)
    def wrapper(ctx, *args, home=None, **kw):
        root = ctx.find_root()
        chosen = home or (root.obj or {}).get("home")
        return f(resolve_home(chosen), *args, **kw)
    return wrapper


def fail(message: str, code: int = 1) -> "None":
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def settings_or_exit(home: Path) -> Settings:
    try:
        return load_settings(home)
    except ConfigError as e:
        fail(str(e), 2)
        raise  # unreachable


def store_or_exit(home: Path) -> tuple[Settings, Store]:
    settings = settings_or_exit(home)
    store = open_store(home, settings)
    try:
        store.migrate()
    except Exception as e:  # noqa: BLE001 - a broken database must be a sentence, not a traceback
        fail(f"cannot open the database in {home / 'data'}: {e}")
    return settings, store
