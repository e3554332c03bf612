"""The webadmin's routes for the web service's app (web/app.py mounts
them): sign-in for administrators only (web.signin, the webmail's code),
the pages, and the template filters they add."""
from __future__ import annotations

import time

from ..signin import signin_routes
from ..site import WebContext
from . import accounts, antispam, diagnose, system
from .console import Console, admin_site


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


def admin_routes(web: WebContext) -> list:
    site = admin_site()
    site.env.filters.update(stamp=_stamp, uptime=_uptime)
    console = Console(web, site)
    return (signin_routes(site, web, allowed=lambda user: user.admin)
            + system.routes(console) + accounts.routes(console) + antispam.routes(console)
            + diagnose.routes(console))
