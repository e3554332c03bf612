"""The webmail's "Where is my mail?": the message trace of the signed-in
user's own mail (services.trace.MessageTrace.for_user: what they sent or
were sent, and only their part of it), newest first, each message a
timeline in the reader's language (web.timeline). Optional: a queue id,
Message-ID, address or subject words, and how far back."""
from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...services.trace import MessageTrace
from ..site import Site, WebContext, render
from ..timeline import show
from .common import signed

RANGES = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def whereis_routes(site: Site, web: WebContext) -> list[Route]:
    trace = MessageTrace(web.store)

    @signed(web, site)
    async def whereis(request: Request, user) -> Response:
        term = request.query_params.get("q", "").strip()[:300]
        within = request.query_params.get("range", "7d")
        since = time.time() - RANGES[within] if within in RANGES else 0.0
        stories = await web.run(lambda: trace.for_user(user.address, term, since=since))
        folders = await web.run(lambda: web.counts.folders(user.id))
        return render(site, request, "whereis.html", term=term, within=within,
                      ranges=list(RANGES), shown=[show(s) for s in stories],
                      folders=folders, current=None)

    return [Route(site.root + "whereis", whereis, methods=["GET"])]
