"""What every webadmin page shares: the signed-in administrator (anyone
else gets a 403 page, never a half-rendered console), the CSRF check of
each POST, the audit record of each change, and the state of the services
for the banner that every page shows when one of them is down."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...config import ConfigError, load_settings
from ...services import health
from ...services.accounts import Accounts
from ...services.audit import Audit
from ...services.queue import QueueAdmin
from ...services.settings import changed, set_values
from ...services.traffic import Traffic
from ...store.interfaces import User
from ...supervisor import control
from ..i18n import N_
from ..sessions import WebSession
from ..site import Site, WebContext, checked_form, render, session_of
from ..site import forbidden as expired

PREFIX = "/webadmin"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "admin"


# What a service being down means for the people using the system.
IMPACT = {
    "smtp": N_("mail from other servers and from mail programs is not accepted"),
    "pop3": N_("POP3 mail programs cannot fetch mail"),
    "imap": N_("IMAP mail programs cannot read mail"),
    "deliveragent": N_("outgoing mail waits in the queue and nothing is delivered out"),
    "web": N_("the webmail and this console are unavailable"),
}


# The supervisor's state names, as a page shows them.
STATES = {"running": N_("running"), "stopped": N_("stopped"), "starting": N_("starting"),
          "stopping": N_("stopping"), "backoff": N_("restarting after a crash"),
          "failed": N_("failed")}


@dataclass
class Problem:
    """One sentence for the banner: what is down and what it means."""

    service: str
    state: str
    error: str = ""
    restarts: int = 0


class Console:
    """What the admin pages need, built once per web worker."""

    def __init__(self, web: WebContext, site: Site):
        self.web = web
        self.site = site
        self.ctx = web.ctx
        self.home = web.ctx.home
        self.store = web.ctx.store
        self.audit = Audit(self.store)
        self.queue = QueueAdmin(self.store)
        self.traffic = Traffic(self.home / "logs")
        self._status: tuple[float, dict | None] = (0.0, None)
        self.doctor: Any = None        # admin.diagnose.DoctorRuns, set with the routes

    def accounts(self) -> Accounts:
        s = self.ctx.settings
        return Accounts(self.store, s.server.domain, int(s.limits.default_quota))

    async def run(self, fn, *args, **kw):
        return await asyncio.to_thread(fn, *args, **kw)

    # ------------------------------------------------------------ services
    async def status(self, fresh: bool = False) -> dict | None:
        """The supervisor's status (cached for a second: every page asks),
        or None when no supervisor answers."""
        at, got = self._status
        if fresh or time.monotonic() - at > 1.0:
            try:
                got = await self.run(control.request, self.home, {"cmd": "status"}, 3.0)
            except (control.NotRunning, OSError, ValueError):
                got = None
            self._status = (time.monotonic(), got)
        return got

    async def problems(self) -> list[Problem] | None:
        """Services not running (None: the supervisor itself is not)."""
        st = await self.status()
        if st is None:
            return None
        return [Problem(s["name"], s["state"], s.get("error") or "", s.get("restarts") or 0)
                for s in st.get("services", []) if s["state"] != "running"]

    def low_disk(self) -> health.DiskState | None:
        """The data directory's figures when space or inodes run low, else None."""
        d = health.disk(self.home / "data")
        return d if d.low_space or d.low_inodes else None

    def record(self, request: Request, action: str, target: str, old: object = "",
               new: object = "") -> None:
        user: User = request.state.user
        self.audit.record(user.address, client_ip(request), action, target, old, new)
        self.ctx.log.info("webadmin.change", user=user.address, ip=client_ip(request),
                          action=action, target=target)


async def save_keys(console: Console, request: Request, form: dict[str, str], path: str,
                    again: Callable[[Request, dict, dict], Awaitable[Response]]) -> Response:
    """The form's `k:SECTION.KEY` fields saved as `coremail config set` does,
    all or none, each change audited, then back to `path`; when a value is
    refused, `again(request, problems by key, what was typed)` (nothing saved)."""
    submitted = {k[2:]: v for k, v in form.items() if k.startswith("k:")}
    current = await console.run(load_settings, console.home)
    diff = changed(current, submitted)
    if not diff:
        return back(path, "settings_same")
    try:
        await console.run(set_values, console.home, {k: new for k, (_, new) in diff.items()})
    except ConfigError as e:
        return await again(request, e.problems or {next(iter(diff)): str(e)}, submitted)
    for key, (old, new) in diff.items():
        await console.run(console.record, request, "setting.set", key, old, new)
    return back(path, "settings_saved", ", ".join(diff))


def admin_post(console: Console):
    """A POST of the console: `fn(request, form)` once an administrator is
    signed in and the form's CSRF token checked out (else the refusal or 403)."""
    def wrap(fn: Callable[[Request, dict[str, str]], Awaitable[Response]]):
        async def handler(request: Request) -> Response:
            if (refused := await admin_or_refusal(console, request)) is not None:
                return refused
            if (form := await form_of(request)) is None:
                return await forbidden(console, request)
            return await fn(request, form)
        return handler
    return wrap


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def signed_in(console: Console, request: Request) -> tuple[WebSession, User] | None:
    return await session_of(console.web, request)


async def admin_or_refusal(console: Console, request: Request) -> Response | None:
    """None when an administrator is signed in; else where to send the browser:
    the sign-in page, or a 403 page for a signed-in user without the right."""
    got = await signed_in(console, request)
    if got is None:
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': request.url.path})}",
                                status_code=303)
    if not got[1].admin:
        console.ctx.log.info("webadmin.refused", user=got[1].address, ip=client_ip(request),
                             path=request.url.path)
        return await page(console, request, "refused.html", 403)
    return None


async def form_of(request: Request) -> dict[str, str] | None:
    """The POST's fields, or None when its CSRF token is missing or wrong."""
    form = await checked_form(request, request.state.session)
    return None if form is None else {k: str(v) for k, v in form.items()}


async def page(console: Console, request: Request, name: str, status: int = 200,
               error: str = "", **values) -> Response:
    if "problems" not in values:
        values["problems"] = [] if name == "refused.html" else await console.problems()
    values.setdefault("impact", IMPACT)
    values.setdefault("states", STATES)
    if "low_disk" not in values and name != "refused.html":
        values["low_disk"] = await console.run(console.low_disk)
    if error:
        values["flashes"] = [("error", error)]
    return render(console.site, request, name, status, **values)


async def forbidden(console: Console, request: Request) -> Response:
    return expired(console.site, request)


# The sentence shown after a change, by the code a redirect carries (a
# code, not the text: a link made elsewhere cannot put words on this page);
# {n} is what changed.
NOTICES = {
    "domain_added": N_("The domain {n} was added."),
    "domain_deleted": N_("The domain {n} was deleted."),
    "user_added": N_("The user {n} was added."),
    "user_saved": N_("The changes to {n} were saved."),
    "user_password": N_("The password of {n} was changed."),
    "user_deleted": N_("The user {n} and all of their mail were deleted."),
    "alias_added": N_("The alias {n} was added."),
    "alias_deleted": N_("The alias {n} was deleted."),
    "forward_set": N_("The auto-forward of {n} was saved."),
    "forward_cleared": N_("The auto-forward of {n} was turned off."),
    "settings_saved": N_("Saved: {n}. Running services use the new values within a few seconds."),
    "settings_same": N_("Nothing was changed."),
    "queue_flushed": N_("{n} message(s) will be retried now."),
    "queue_deleted": N_("Deleted from the queue: {n}."),
    "service_started": N_("{n} was started."),
    "service_stopped": N_("{n} was stopped."),
    "service_restarted": N_("{n} was restarted."),
    "rule_added": N_("Rule {n} was added."),
    "rule_deleted": N_("Rule {n} was deleted."),
}


def admin_site() -> Site:
    return Site(PREFIX + "/", TEMPLATES, dict(NOTICES), title="coremail")


def back(path: str, notice: str = "", what: object = "") -> Response:
    sep = "&" if "?" in path else "?"
    q = f"{sep}{urlencode({'done': notice, 'n': str(what)})}" if notice else ""
    return RedirectResponse(f"{PREFIX}{path}{q}", status_code=303)
