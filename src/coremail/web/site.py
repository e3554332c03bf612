"""What every web console shares (the webmail at /coremail/, the webadmin at
/webadmin/): a `Site` says where one console lives; `WebContext` holds the
services a worker uses; `render` fills the shared layout (header, navigation,
language switch, notices); sessions, the CSRF check of every POST, the
refusal and "service unavailable" pages, and the security headers of every
response (a strict Content-Security-Policy: no script at all)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import i18n
from .i18n import _
from .sessions import SessionStore, WebSession, sessions_for
from .templating import environment

COOKIE = "cm_session"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' https: http:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


@dataclass
class Site:
    """One console: its URL root, its templates, the notices its redirects
    name (`?done=KEY`, texts marked with N_ and translated when shown)."""

    root: str                               # "/coremail/"
    templates: Path | None = None           # its own templates, before the shared ones
    notices: dict[str, str] = field(default_factory=dict)
    title: str = "coremail"

    def __post_init__(self):
        dirs = [self.templates] if self.templates else []
        self.env = environment(*dirs)

    @property
    def login_url(self) -> str:
        return self.root + "login"

    @property
    def logout_url(self) -> str:
        return self.root + "logout"


class WebContext:
    """The services a web worker uses, built once per process."""

    def __init__(self, ctx: Any, **services: Any):
        self.ctx = ctx
        self.store = ctx.store
        self.sessions: SessionStore = sessions_for(ctx.store, ctx.home / "run")
        for k, v in services.items():
            setattr(self, k, v)

    async def run(self, fn, *args):
        """Blocking work (the store, blobs, parsing) off the event loop."""
        return await asyncio.to_thread(fn, *args)


def render(site: Site, request: Request, name: str, status: int = 200, **values) -> HTMLResponse:
    flashes = list(values.pop("flashes", []))
    done = request.query_params.get("done")
    if done in site.notices:
        flashes.insert(0, ("ok", _(site.notices[done]).format(n=request.query_params.get("n", ""))))
    values.setdefault("session", getattr(request.state, "session", None))
    values.setdefault("user", getattr(request.state, "user", None))
    html = site.env.get_template(name).render(request=request, site=site, flashes=flashes,
                                              **values)
    return HTMLResponse(html, status_code=status)


def error_page(site: Site, request: Request, status: int, title: str, text: str) -> HTMLResponse:
    return render(site, request, "error.html", status, title=title, text=text)


def unavailable(site: Site, request: Request, service: str) -> HTMLResponse:
    """The page for a failed store, queue or other service: which one, and
    what an administrator can do; never a traceback."""
    return render(site, request, "error.html", 503, title=_("Service unavailable"),
                  text=_("{service} is unavailable right now. Try again in a minute; if it "
                         "persists, an administrator can run “coremail doctor”.").format(
                             service=service), doctor=True)


def forbidden(site: Site, request: Request) -> HTMLResponse:
    return error_page(site, request, 403, _("Forbidden"),
                      _("This form has expired or did not come from this site; nothing was "
                        "changed. Go back, reload the page and try again."))


async def session_of(web: WebContext, request: Request) -> tuple[WebSession, Any] | None:
    """The signed-in session and its (enabled) user, also left on request.state."""
    s = await web.run(web.sessions.get, request.cookies.get(COOKIE))
    if s is None:
        return None
    user = await web.run(web.store.get_user_by_id, s.user_id)
    if user is None or not user.enabled:
        return None
    request.state.session, request.state.user = s, user
    return s, user


async def checked_form(request: Request, s: WebSession):
    """The form of a POST, or None when its CSRF token is missing or wrong."""
    form = await request.form(max_part_size=64 << 20)
    if form.get("csrf") != s.csrf:
        return None
    return form


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(url: str | None, default: str) -> str:
    """A `next` target that stays on this site (no open redirect)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url \
            or any(ord(c) < 32 for c in url):
        return default
    return url


def secure_headers(resp: Response) -> Response:
    if "content-security-policy" not in resp.headers:   # a page may set its own
        resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    if "cache-control" not in resp.headers:
        resp.headers["Cache-Control"] = "no-store"
    return resp


def language_switch(request: Request) -> Response:
    """GET /lang/{code}?next=...: remembers the choice in a cookie (a display
    preference of this browser; nothing on the server changes)."""
    code = request.path_params["code"]
    resp = redirect(local_path(request.query_params.get("next"), "/"))
    if code in i18n.LANGUAGES:
        resp.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
    return resp
