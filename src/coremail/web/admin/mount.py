"""The webadmin's routes for the web service's app (web/app.py mounts
them), and the template filters its pages use."""
from __future__ import annotations

import time
from typing import Any

from . import accounts, system
from .console import Console


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _uptime(seconds: float) -> str:
    s = int(max(0, seconds))
    d, h, m = s // 86400, s // 3600 % 24, s // 60 % 60
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s % 60}s"


def admin_routes(web: Any) -> list:
    env = web.templates
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        # Until the shared environment brings the catalogs: English as written.
        env.add_extension("jinja2.ext.i18n")
        env.install_null_translations(newstyle=True)   # type: ignore[attr-defined]
    env.filters["stamp"] = _stamp
    env.filters["uptime"] = _uptime
    console = Console(web)
    return system.routes(console) + accounts.routes(console)
