"""Webadmin pages for the running system: sign-in, the dashboard, settings
(built from the typed configuration and saved through services.settings,
the code of `coremail config set`), the outbound queue (services.queue, as
`coremail queue`), the services (the supervisor's control socket, as
`coremail status/start/stop/restart`; with several nodes every node's, as
`coremail status --all`) and the audit log."""
from __future__ import annotations

import secrets
import time

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ...config import ConfigError, load_settings
from ...services import health
from ...services.settings import describe
from ...services.traffic import totals
from ...supervisor import control
from ...supervisor.heartbeat import STALE_AFTER
from ..i18n import N_, _
from .chart import traffic_chart
from .console import (PREFIX, Console, admin_or_refusal, admin_post, back, forbidden, form_of,
                      page, save_keys)

FINDING_STATES = {"ok": N_("ok"), "warn": N_("warning"), "fail": N_("failed")}
SERVICES_ORDER = ("smtp", "pop3", "imap", "deliveragent", "web")
# The web's policy plus this page's one script file and its requests to us.
RESTART_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
BOOT = secrets.token_hex(8)     # names this process: a restarted web answers another


def routes(c: Console) -> list[Route]:
    # ------------------------------------------------------------- dashboard
    async def dashboard(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        hours = await c.run(c.traffic.last_day)
        rows = await c.run(c.queue.rows)
        disk = await c.run(health.disk, c.home / "data")
        cert = await c.run(health.certificate, c.home / "conf" / "tls")
        return await page(c, request, "dashboard.html", hours=hours,
                          sums=totals(hours), chart=traffic_chart(hours), queue=rows,
                          oldest=min(rows, key=lambda r: r.created).age if rows else "",
                          disk=disk, cert=cert, svc=await c.status(),
                          doctor=c.doctor.latest(), doctor_at=c.doctor.at,
                          doctor_running=c.doctor.running, statuses=FINDING_STATES)

    # -------------------------------------------------------------- settings
    async def settings_page(request: Request, problems: dict | None = None,
                            typed: dict | None = None, status: int = 200) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        try:
            current = await c.run(load_settings, c.home)
            broken = ""
        except ConfigError as e:
            current, broken = c.ctx.settings, str(e)
        return await page(c, request, "settings.html", status,
                          sections=describe(current), bad=problems or {}, typed=typed or {},
                          broken=broken)

    @admin_post(c)
    async def settings_save(request: Request, form: dict[str, str]) -> Response:
        return await save_keys(c, request, form, "/settings",
                               lambda rq, bad, typed: settings_page(rq, bad, typed, 400))

    # ----------------------------------------------------------------- queue
    async def queue_page(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        return await page(c, request, "queue.html", rows=await c.run(c.queue.rows),
                          confirm=request.query_params.get("confirm") == "delete-all")

    async def queue_flush(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        qid = form.get("id") or None
        n = await c.run(c.queue.flush, qid)
        await c.run(c.record, request, "queue.flush", qid or "(all)", "", f"{n} retried now")
        return back("/queue", "queue_flushed", n)

    async def queue_delete(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        if form.get("all") == "1":
            if form.get("confirm") != "1":
                return back("/queue?confirm=delete-all")
            ids = [r.id for r in await c.run(c.queue.rows)]
        else:
            ids = [form.get("id", "")]
        who = f"{request.state.user.address} (webadmin)"
        gone = [q for q in ids if await c.run(c.queue.delete, q, who)]
        for q in gone:
            await c.run(c.record, request, "queue.delete", q, "queued", "")
        return back("/queue", "queue_deleted", ", ".join(gone) or "-")

    # -------------------------------------------------------------- services
    async def services_page(request: Request, error: str = "", status: int = 200) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        st = await c.status(fresh=True)
        confirm = request.query_params.get("confirm", "")
        # several nodes: every node's services, as its heartbeat last said
        nodes = await c.run(c.store.node_list) if c.store.shared else []
        return await page(c, request, "services.html", status, status_reply=st,
                          error=error, confirm=confirm, clock=time.time(), nodes=nodes,
                          this_node=c.ctx.settings.server.hostname, stale=STALE_AFTER)

    async def service_action(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in ("start", "stop", "restart") or name not in SERVICES_ORDER:
            return await services_page(request, _("There is no such service or action."), 400)
        if name == "web" and action in ("stop", "restart"):
            if form.get("confirm") != "1":
                return back(f"/services?confirm={action}")
            # This very process is stopped: answer first, then ask, without
            # waiting for a reply that would hold up our own stop.
            await c.run(c.record, request, f"service.{action}", name, "running", action)
            resp = await page(c, request, "restarting.html", action=action, boot=BOOT)
            # Its one script waits for the new process (see static/admin-restart.js).
            resp.headers["Content-Security-Policy"] = RESTART_CSP
            resp.background = BackgroundTask(control.send_only, c.home,
                                             {"cmd": action, "service": name})
            return resp
        try:
            reply = await c.run(control.request, c.home, {"cmd": action, "service": name}, 180)
        except control.NotRunning as e:
            return await services_page(request, str(e), 503)
        before = "running" if action != "start" else "stopped"
        results = reply.get("results") or [{}]
        if not reply.get("ok"):
            err = results[0].get("error") or reply.get("error") or "failed"
            await c.run(c.record, request, f"service.{action}", name, before, f"failed: {err}")
            return await services_page(request, f"{name}: {err}", 500)
        after = "stopped" if action == "stop" else "running"
        await c.run(c.record, request, f"service.{action}", name, before, after)
        return back("/services", {"start": "service_started", "stop": "service_stopped",
                                  "restart": "service_restarted"}[action], name)

    async def ping(request: Request) -> Response:
        """Which process answers: the restart page waits for a new one."""
        return PlainTextResponse(BOOT, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------- audit log
    async def audit_page(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        qp = request.query_params
        try:
            pg = max(0, int(qp.get("page", "0")))
        except ValueError:
            pg = 0
        since = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}.get(qp.get("since", ""))
        per = 50
        entries, total = await c.run(lambda: c.audit.page(
            actor=qp.get("actor", ""), action=qp.get("action", ""), text=qp.get("q", ""),
            since=time.time() - since if since else None, offset=pg * per, limit=per))
        return await page(c, request, "audit.html", entries=entries, total=total,
                          page=pg, pages=max(1, -(-total // per)), f=dict(qp))

    p = PREFIX
    return [
        Route(f"{p}/", dashboard, methods=["GET"]),
        Route(f"{p}", lambda r: RedirectResponse(f"{p}/", status_code=302), methods=["GET"]),
        Route(f"{p}/settings", settings_page, methods=["GET"]),
        Route(f"{p}/settings", settings_save, methods=["POST"]),
        Route(f"{p}/queue", queue_page, methods=["GET"]),
        Route(f"{p}/queue/flush", queue_flush, methods=["POST"]),
        Route(f"{p}/queue/delete", queue_delete, methods=["POST"]),
        Route(f"{p}/services", services_page, methods=["GET"]),
        Route(f"{p}/services/{{name}}/{{action}}", service_action, methods=["POST"]),
        Route(f"{p}/audit", audit_page, methods=["GET"]),
        Route(f"{p}/ping", ping, methods=["GET"]),
    ]
