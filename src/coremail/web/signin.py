"""Sign-in and sign-out for a console (webmail or webadmin): the full address
or the bare local part, the password checked by services.login off the event
loop with the throttle IMAP, POP3 and SMTP AUTH share, a server-side session
in an HttpOnly SameSite=Lax cookie (Secure over HTTPS), and a `next` that
stays on this site.

There is no session before sign-in, so the sign-in form's CSRF token is a
double submit: the page sets a random pre-session cookie (HttpOnly,
SameSite=Strict) and puts the same value in the form; a POST whose two copies
differ (a forged cross-site login) gets the form again with a 403, and no
password is checked."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..services.login import LoginBusy
from .i18n import _
from .site import (COOKIE, Site, WebContext, checked_form, forbidden, local_path, redirect,
                   render, session_of)

PRESESSION = "cm_signin"


def _presession(request: Request) -> str:
    """This browser's pre-session token, or a new one when it has none."""
    got = request.cookies.get(PRESESSION, "")
    return got if 20 <= len(got) <= 64 and got.isascii() else secrets.token_urlsafe(24)


def _keep_presession(request: Request, resp: Response, token: str) -> Response:
    resp.set_cookie(PRESESSION, token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/")
    return resp


def signin_routes(site: Site, web: WebContext,
                  allowed: Callable[[Any], bool] = lambda user: True) -> list[Route]:
    async def login_page(request: Request) -> Response:
        if await session_of(web, request) is not None:
            return redirect(site.root)
        token = _presession(request)
        return _keep_presession(request, render(
            site, request, "login.html", login="", error=None, csrf=token,
            next=local_path(request.query_params.get("next"), "")), token)

    async def login(request: Request) -> Response:
        form = await request.form()
        login_name = str(form.get("login", "")).strip()
        password = str(form.get("password", ""))
        nxt = local_path(str(form.get("next", "")), "")
        s = web.ctx.settings
        ip = request.client.host if request.client else ""
        token = _presession(request)

        def again(status: int, error: str) -> Response:
            return _keep_presession(request, render(
                site, request, "login.html", status, login=login_name, error=error, next=nxt,
                csrf=token), token)
        cookie = request.cookies.get(PRESESSION)
        if cookie != token or not secrets.compare_digest(token.encode(),
                                                         str(form.get("csrf", "")).encode()):
            web.ctx.log.info("web.login_forged", ip=ip, login=login_name, cookie=bool(cookie))
            login_name = ""          # a forged post's address is not put in the form
            return again(403, _("This sign-in form has expired or did not come from this site, "
                                "so nothing was checked. Sign in again below; your browser "
                                "must accept cookies from this site."))
        try:
            user, wait = await web.auth.login_async(
                login_name, password, ip, domain=s.server.domain, limit=s.limits.auth_failures,
                window=float(s.limits.auth_window))
        except LoginBusy:
            return again(503, _("The server is checking too many sign-ins right now; try again "
                                "in a moment."))
        if user is None:
            web.ctx.log.info("web.login_failed", ip=ip, login=login_name, throttled=bool(wait))
            return again(200, _("Too many failed sign-ins from your address; try again in a few "
                                "minutes.") if wait else _("Wrong email address or password."))
        if not allowed(user):
            return again(403, _("This account may not use this console."))
        session = await web.run(web.sessions.create, user.id)
        web.ctx.log.info("web.login", ip=ip, user=user.address, site=site.root)
        resp = redirect(nxt if nxt.startswith(site.root) else site.root)
        resp.set_cookie(COOKIE, session.token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
        resp.delete_cookie(PRESESSION, path="/")
        return resp

    async def logout(request: Request) -> Response:
        got = await session_of(web, request)
        if got is not None:
            if await checked_form(request, got[0]) is None:
                return forbidden(site, request)
            await web.run(web.sessions.delete, got[0].token)
        resp = redirect(site.login_url)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    return [Route(site.login_url, login_page, methods=["GET"]),
            Route(site.login_url, login, methods=["POST"]),
            Route(site.logout_url, logout, methods=["POST"])]
