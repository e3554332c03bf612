"""The one Jinja environment recipe of the web consoles: autoescaping, the
i18n extension with the request's language (web.i18n), and the filters the
pages share (sizes, dates in the reader's language, URL quoting). A console
passes its own template folder; the shared layout (base.html, error.html,
_flashes.html, _language.html) comes after it."""
from __future__ import annotations

import hashlib
import time
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from babel.dates import format_skeleton, format_time
from jinja2 import ChoiceLoader, Environment, FileSystemLoader

from . import i18n

HERE = Path(__file__).resolve().parent
SHARED = HERE / "templates"
STATIC = HERE / "static"
STATIC_URL = "/coremail/static/"


@lru_cache(maxsize=None)
def _static_version(name: str) -> str:
    try:
        return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    except OSError:
        return "0"


def static_url(name: str) -> str:
    """A versioned URL: the content hash changes it, so browsers may keep it for a year."""
    return f"{STATIC_URL}{name}?v={_static_version(name)}"


def size(n: int) -> str:
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}".replace(".0 ", " ")
    return f"{n} B"


def when(epoch: float) -> str:
    """Today: the time; this year: day and month; else the date; in the reader's language."""
    loc = i18n.locale(i18n.current())
    t, now = datetime.fromtimestamp(epoch), datetime.now()
    if t.date() == now.date():
        return format_time(t, "short", locale=loc)
    return format_skeleton("MMMd" if t.year == now.year else "yMMMd", t, locale=loc)


def full_date(epoch: float) -> str:
    loc = i18n.locale(i18n.current())
    t = datetime.fromtimestamp(epoch)
    return format_skeleton("yMMMEd", t, locale=loc) + " " + format_time(t, "short", locale=loc) \
        + " " + time.strftime("%z", time.localtime(epoch))


def utc(epoch: float) -> str:
    """A moment as the message trace shows it everywhere (coremail trace too): UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def environment(*dirs: Path) -> Environment:
    loaders = [FileSystemLoader(str(d)) for d in dirs] + [FileSystemLoader(str(SHARED))]
    env = Environment(loader=ChoiceLoader(loaders), autoescape=True,
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True,
                                  pgettext=i18n.pgettext)
    env.filters.update(size=size, datetime=when, full_date=full_date, utc=utc,
                       q=lambda s: quote(str(s), safe=""))
    env.globals.update(languages=i18n.LANGUAGES, current_language=i18n.current,
                       html_lang=i18n.html_lang, static=static_url)
    return env
