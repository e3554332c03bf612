"""The webmail's pages (Starlette): sign-in, folders, the message list, a
message, compose and send. Thin: mail goes through services.send (the same
verdicts as port 587), folders through services.mailboxes, logins through
services.login (the same throttle and password checks as IMAP/POP3/SMTP).

Every page carries a strict Content-Security-Policy (no inline script at
all), every state-changing request is a POST with the session's CSRF token,
and the session cookie is HttpOnly and SameSite=Lax (Secure over HTTPS).
"""
from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..mail.address import AddressError, parse_address
from ..mail.mime import summarize
from ..services.login import LoginBusy
from ..services.send import Sender
from ..store.interfaces import BlobMissing, StoreError, User
from .admin.mount import admin_routes
from .render import show
from .sessions import SessionStore, WebSession

HERE = Path(__file__).resolve().parent
COOKIE = "cm_session"
PAGE = 50
FOLDER_NAMES = {"INBOX": "Inbox"}
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' https: http:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


class Web:
    """What the pages need, built once per worker by the web service."""

    def __init__(self, ctx: Any, auth: Any, sender: Sender, mailboxes: Any):
        self.ctx = ctx
        self.store = ctx.store
        self.auth = auth
        self.sender = sender
        self.mailboxes = mailboxes
        self.sessions = SessionStore(ctx.home / "run" / "websessions")
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(["html"]))
        self.templates.filters["folder"] = lambda n: FOLDER_NAMES.get(n, n)
        self.templates.filters["size"] = _size
        self.templates.filters["q"] = lambda s: quote(s, safe="")
        self.templates.filters["datetime"] = _when

    async def run(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    def page(self, request: Request, name: str, status: int = 200, **values) -> HTMLResponse:
        values.setdefault("session", getattr(request.state, "session", None))
        values.setdefault("user", getattr(request.state, "user", None))
        html = self.templates.get_template(name).render(request=request, **values)
        return HTMLResponse(html, status_code=status)


def _when(epoch: int) -> str:
    """Today: the time; this year: day and month; else the date."""
    t, now = time.localtime(epoch), time.localtime()
    if t[:3] == now[:3]:
        return time.strftime("%H:%M", t)
    return time.strftime("%d %b" if t.tm_year == now.tm_year else "%Y-%m-%d", t)


def _size(n: int) -> str:
    for unit, div in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}".replace(".0 ", " ")
    return f"{n} B"


def _secure_headers(resp: Response) -> Response:
    if "content-security-policy" not in resp.headers:   # a page may set a stricter one
        resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


# ------------------------------------------------------------ session plumbing
async def _session(web: Web, request: Request) -> tuple[WebSession, User] | None:
    s = await web.run(web.sessions.get, request.cookies.get(COOKIE))
    if s is None:
        return None
    user = await web.run(web.store.get_user_by_id, s.user_id)
    if user is None or not user.enabled:
        return None
    request.state.session, request.state.user = s, user
    return s, user


def _login_redirect() -> Response:
    return RedirectResponse("/coremail/login", status_code=303)


async def _form(web: Web, request: Request, s: WebSession):
    """The form of a POST, or None when its CSRF token is missing or wrong."""
    form = await request.form()
    if form.get("csrf") != s.csrf:
        return None
    return form


def _forbidden(web: Web, request: Request) -> Response:
    return web.page(request, "error.html", 403, title="Forbidden",
                    text="This form has expired or did not come from this site; nothing was "
                         "changed. Go back, reload the page and try again.")


# ------------------------------------------------------------ pages
def routes(web: Web) -> list:
    async def root(request: Request) -> Response:
        return RedirectResponse("/coremail/", status_code=302)

    async def login_page(request: Request) -> Response:
        return web.page(request, "login.html", login="", error=None)

    async def login(request: Request) -> Response:
        form = await request.form()
        login_name = str(form.get("login", "")).strip()
        password = str(form.get("password", ""))
        s = web.ctx.settings
        ip = request.client.host if request.client else ""
        try:
            user, wait = await web.auth.login_async(
                login_name, password, ip, domain=s.server.domain, limit=s.limits.auth_failures,
                window=float(s.limits.auth_window))
        except LoginBusy:
            return web.page(request, "login.html", 503, login=login_name,
                            error="The server is checking too many sign-ins right now; "
                                  "try again in a moment.")
        if user is None:
            error = ("Too many failed sign-ins from your address; try again in a few minutes."
                     if wait else "Wrong email address or password.")
            web.ctx.log.info("web.login_failed", ip=ip, login=login_name, throttled=bool(wait))
            return web.page(request, "login.html", login=login_name, error=error)
        session = await web.run(web.sessions.create, user.id)
        web.ctx.log.info("web.login", ip=ip, user=user.address)
        resp = RedirectResponse("/coremail/", status_code=303)
        resp.set_cookie(COOKIE, session.token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
        return resp

    async def logout(request: Request) -> Response:
        got = await _session(web, request)
        if got is not None:
            if await _form(web, request, got[0]) is None:
                return _forbidden(web, request)
            await web.run(web.sessions.delete, got[0].token)
        resp = RedirectResponse("/coremail/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def folder(request: Request) -> Response:
        got = await _session(web, request)
        if got is None:
            return _login_redirect()
        _, user = got
        name = request.path_params.get("name", "INBOX")
        folders = await web.run(lambda: web.store.list_folders(user.id, counts=True))
        current = next((f for f in folders if f.name == name), None)
        if current is None:
            return web.page(request, "error.html", 404, title="No such folder",
                            text=f"There is no folder called {name}.")
        try:
            page = max(0, int(request.query_params.get("page", "0")))
        except ValueError:
            page = 0
        msgs = await web.run(lambda: web.store.list_messages(current.id, with_meta=True))
        msgs.reverse()    # newest first
        shown = msgs[page * PAGE:(page + 1) * PAGE]
        return web.page(request, "folder.html", folders=folders, current=current,
                        messages=shown, page=page, pages=max(1, -(-len(msgs) // PAGE)))

    async def message(request: Request) -> Response:
        got = await _session(web, request)
        if got is None:
            return _login_redirect()
        _, user = got
        m = await web.run(web.store.get_message, int(request.path_params["id"]))
        f = m and await web.run(web.store.get_folder_by_id, m.folder_id)
        if m is None or f is None or f.user_id != user.id:
            return web.page(request, "error.html", 404, title="No such message",
                            text="This message is not in your mailbox (any more).")
        try:
            raw = await web.run(web.store.blobs.read, m.blob_id)
        except BlobMissing:
            return web.page(request, "error.html", 404, title="Message removed",
                            text="This message was deleted meanwhile.")
        meta = m.meta
        if meta is None:
            meta = await web.run(summarize, raw)
        if "\\Seen" not in m.flags:
            await web.run(lambda: web.mailboxes.set_flags(f.id, [m.uid], frozenset({"\\Seen"}), "add"))
        view = show(raw, meta, load_images=request.query_params.get("images") == "1")
        folders = await web.run(lambda: web.store.list_folders(user.id, counts=True))
        return web.page(request, "message.html", m=m, view=view, folders=folders, current=f)

    async def compose_page(request: Request) -> Response:
        got = await _session(web, request)
        if got is None:
            return _login_redirect()
        return web.page(request, "compose.html", values={}, errors={}, notice=None)

    async def send(request: Request) -> Response:
        got = await _session(web, request)
        if got is None:
            return _login_redirect()
        s, user = got
        form = await _form(web, request, s)
        if form is None:
            return _forbidden(web, request)
        values = {k: str(form.get(k, "")) for k in ("to", "cc", "bcc", "subject", "body")}
        errors: dict[str, str] = {}
        rcpts: list[str] = []
        heads: dict[str, list[str]] = {}
        for field in ("to", "cc", "bcc"):
            heads[field] = []
            for name, addr in getaddresses([values[field]]):
                if not addr.strip():
                    continue
                try:
                    a = str(parse_address(addr))
                except AddressError as e:
                    errors[field] = f"{addr.strip()}: {e}"
                    continue
                rcpts.append(a)
                heads[field].append(f"{name} <{a}>" if name else a)
        if not rcpts and "to" not in errors:
            errors["to"] = "Add at least one recipient."
        if errors:
            return web.page(request, "compose.html", values=values, errors=errors, notice=None)
        msg = EmailMessage()
        msg["From"] = f"{user.name} <{user.address}>" if user.name else user.address
        if heads["to"]:
            msg["To"] = ", ".join(heads["to"])
        if heads["cc"]:
            msg["Cc"] = ", ".join(heads["cc"])
        msg["Subject"] = values["subject"]
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=user.domain)
        msg.set_content(values["body"].replace("\r\n", "\n"))
        raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        ip = request.client.host if request.client else "127.0.0.1"
        try:
            result = await web.sender.send(user, ip=ip, sender=user.address, recipients=rcpts,
                                           content=raw)
        except StoreError as e:
            return web.page(request, "compose.html", 503, values=values, errors={},
                            notice=f"The message could not be sent: {e.text}. Your text is "
                                   "still here; try again, or ask an administrator to run "
                                   "`coremail doctor`.")
        if not result.ok:
            for addr, v in result.refused.items():
                field = next((f for f in ("to", "cc", "bcc") if addr in values[f]), "to")
                errors[field] = f"{addr}: {v.text}"
            return web.page(request, "compose.html", values=values, errors=errors,
                            notice=None if errors else f"Not sent: {result.verdict.text}")
        web.ctx.log.info("web.sent", user=user.address, qid=result.qid, rcpts=len(rcpts))
        return RedirectResponse("/coremail/?sent=1", status_code=303)

    return [
        Route("/", root),
        Route("/coremail/", folder),
        Route("/coremail/login", login_page, methods=["GET"]),
        Route("/coremail/login", login, methods=["POST"]),
        Route("/coremail/logout", logout, methods=["POST"]),
        Route("/coremail/folder/{name:path}", folder),
        Route("/coremail/message/{id:int}", message),
        Route("/coremail/compose", compose_page, methods=["GET"]),
        Route("/coremail/compose", send, methods=["POST"]),
        Mount("/coremail/static", StaticFiles(directory=HERE / "static"), name="static"),
        *admin_routes(web),
    ]


def create_app(web: Web) -> Starlette:
    async def guard(request: Request, call_next) -> Response:
        try:
            resp = await call_next(request)
        except Exception as e:   # never a traceback to the browser
            web.ctx.log.error("web.error", path=request.url.path, error=repr(e))
            resp = web.page(request, "error.html", 503, title="Something went wrong",
                            text="A service this page needs is unavailable right now. Try "
                                 "again in a minute; if it persists, an administrator can run "
                                 "`coremail doctor`.")
        return _secure_headers(resp)
    return Starlette(routes=routes(web), middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)])
