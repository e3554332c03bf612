"""Webadmin pages for finding out what happened: the message trace (the
search of `coremail trace` with sender, recipient, subject words and a time
range, each message a timeline in the reader's language: web.timeline), and
`coremail doctor`'s findings for the dashboard. The doctor runs in the
background of the web process (a run looks up DNS and tries ports, seconds
of waiting): the dashboard shows the last results and never waits for one.
"""
from __future__ import annotations

import asyncio
import calendar
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...services.doctor import Doctor
from ...services.doctor_result import Finding, fail
from ...services.trace import MessageTrace, Query
from ...supervisor import control
from ..i18n import _
from ..timeline import show
from .console import PREFIX, Console, admin_or_refusal, back, forbidden, form_of, page

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
FIELDS = ("q", "sender", "recipient", "subject", "range", "from", "to")


def _utc(value: str) -> float | None:
    """A datetime-local field (YYYY-MM-DDTHH:MM, UTC) as epoch seconds; raises ValueError."""
    if not value.strip():
        return None
    return float(calendar.timegm(time.strptime(value.strip()[:16], "%Y-%m-%dT%H:%M")))


class DoctorRuns:
    """The last doctor results of this web process, refreshed in the
    background when older than EVERY seconds (or when asked)."""

    EVERY = 300.0

    def __init__(self, console: Console):
        self.c = console
        self.results: list[Finding] | None = None
        self.at = 0.0
        self.task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> None:
        if not self.running:
            self.task = asyncio.get_running_loop().create_task(self._run())

    def latest(self) -> list[Finding] | None:
        """What the last run found (None before the first); starts a run when stale."""
        if time.time() - self.at > self.EVERY:
            self.start()
        return self.results

    async def _run(self) -> None:
        home = self.c.home
        doctor = Doctor(home, self.c.ctx.settings, self.c.store,
                        status=lambda: control.request(home, {"cmd": "status"}, 10))
        try:
            found = await doctor.run_async()
        except Exception as e:  # noqa: BLE001 - a broken check is a finding, not a 500
            found = [fail("doctor", f"the checks could not run: {e!r}",
                          "run `coremail doctor` on the server")]
        self.results, self.at = found, time.time()


def routes(c: Console) -> list[Route]:
    runs = DoctorRuns(c)
    c.doctor = runs

    async def trace_page(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        f = {k: request.query_params.get(k, "") for k in FIELDS}
        error, since, until = "", 0.0, None
        try:
            since = _utc(f["from"]) or (time.time() - RANGES[f["range"]]
                                        if f["range"] in RANGES else 0.0)
            until = _utc(f["to"])
        except ValueError:
            error = _("A time is not in the form YYYY-MM-DD HH:MM.")
        q = Query(text=f["q"], sender=f["sender"], recipient=f["recipient"],
                  subject=f["subject"], since=since, until=until)
        asked = bool(q.keys())
        stories = await c.run(MessageTrace(c.store).search, q) if asked and not error else []
        return await page(c, request, "trace.html", 400 if error else 200, error=error, f=f,
                          asked=asked, shown=[show(s) for s in stories],
                          ranges=list(RANGES))

    async def doctor_again(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if await form_of(request) is None:
            return await forbidden(c, request)
        runs.start()
        return back("/?doctor=running#doctor")

    return [Route(f"{PREFIX}/trace", trace_page, methods=["GET"]),
            Route(f"{PREFIX}/doctor", doctor_again, methods=["POST"])]
