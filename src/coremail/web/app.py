"""The web service's application: the webmail at /coremail/ (and the webadmin
at /webadmin/ beside it) over one WebContext, the shared static files, the
language switch, and the guard that turns any failure into the "service
unavailable" page and puts the security headers on every response."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .admin.mount import admin_routes
from .i18n import LanguageMiddleware, _
from .mail import organising, writing
from .mail.common import webmail_site
from .mail.organising import organising_routes
from .mail.reading import reading_routes
from .mail.writing import writing_routes
from .signin import signin_routes
from .site import WebContext, language_switch, secure_headers, unavailable
from .templating import STATIC


def create_app(web: WebContext) -> Starlette:
    mail = webmail_site({**writing.NOTICES, **organising.NOTICES})

    async def root(request: Request) -> Response:
        return RedirectResponse(mail.root, status_code=302)

    async def guard(request: Request, call_next) -> Response:
        try:
            resp = await call_next(request)
        except Exception as e:   # never a traceback to the browser
            web.ctx.log.error("web.error", path=request.url.path, error=repr(e))
            resp = unavailable(mail, request, _("A service this page needs"))
        return secure_headers(resp)

    routes = [Route("/", root), Route("/coremail/lang/{code}", language_switch),
              *signin_routes(mail, web), *reading_routes(mail, web), *organising_routes(mail, web),
              *writing_routes(mail, web), *admin_routes(web),
              Mount("/coremail/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes, middleware=[Middleware(LanguageMiddleware),
                                                Middleware(BaseHTTPMiddleware, dispatch=guard)])
