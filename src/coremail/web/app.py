"""The web service's application: the webmail at /coremail/ (and the webadmin
at /webadmin/ beside it) over one WebContext, the shared static files, the
language switch, and the guard that turns any failure into the "service
unavailable" page and puts the security headers on every response."""
from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .admin.mount import admin_routes
from .i18n import LanguageMiddleware, _
from .mail import organising, settings, writing
from .mail.common import webmail_site
from .mail.counts import FolderCounts
from .mail.organising import organising_routes
from .mail.reading import reading_routes
from .mail.settings import settings_routes
from .mail.whereis import whereis_routes
from .mail.writing import writing_routes
from .signin import signin_routes
from .site import WebContext, language_switch, secure_headers, unavailable
from .templating import STATIC


class VersionedStatic(StaticFiles):
    """Static files; a versioned URL (templating.static_url) may be kept for a year."""

    async def get_response(self, path, scope):
        resp = await super().get_response(path, scope)
        if resp.status_code == 200 and b"v=" in scope.get("query_string", b""):
            resp.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        elif resp.status_code in (200, 304):
            resp.headers["Cache-Control"] = "public, max-age=300"
        return resp


def create_app(web: WebContext) -> Starlette:
    mail = webmail_site({**writing.NOTICES, **organising.NOTICES, **settings.NOTICES})
    web.counts = FolderCounts(web.store)

    async def root(request: Request) -> Response:
        return RedirectResponse(mail.root, status_code=302)

    async def guard(request: Request, call_next) -> Response:
        started = time.perf_counter()
        try:
            resp = await call_next(request)
        except Exception as e:   # never a traceback to the browser
            web.ctx.log.error("web.error", path=request.url.path, error=repr(e))
            resp = unavailable(mail, request, _("A service this page needs"))
        # the page's own time, for the browser's devtools and bench/webmail_list
        resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return secure_headers(resp)

    routes = [Route("/", root), Route("/coremail/lang/{code}", language_switch),
              *signin_routes(mail, web), *reading_routes(mail, web), *organising_routes(mail, web),
              *writing_routes(mail, web), *settings_routes(mail, web), *whereis_routes(mail, web),
              *admin_routes(web),
              Mount("/coremail/static", VersionedStatic(directory=STATIC), name="static")]
    return Starlette(routes=routes, middleware=[
        Middleware(GZipMiddleware, minimum_size=600, compresslevel=6),
        Middleware(LanguageMiddleware), Middleware(BaseHTTPMiddleware, dispatch=guard)])
