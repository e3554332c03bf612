"""The `smtp` service: port 25 (MX: mail for local domains, no login
needed), 587 (submission: STARTTLS, then AUTH) and 465 (implicit TLS).

Wires the engine to the handler, tracks sessions (per-IP limit, graceful
stop), and sweeps idle sessions once a second instead of arming a timer per
read. One instance runs in each worker process; they share the ports.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import socket
from typing import Any

from ..mail.srs import Srs
from ..proto.listen import ListenerSpec, SessionTracker, peer_address
from ..services.login import Authenticator, LoginCache, throttle_for
from .engine import Session, SmtpProtocol
from .handler import SmtpHandler


class SmtpService:
    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.tracker = SessionTracker()
        self.servers: list[asyncio.base_events.Server] = []
        self._sweeper: asyncio.Task | None = None
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}"
        self.handler: SmtpHandler | None = None

    def listeners(self) -> list[ListenerSpec]:
        lst = self.ctx.settings.listen
        return [ListenerSpec("smtp", lst.smtp), ListenerSpec("submission", lst.submission),
                ListenerSpec("smtps", lst.smtps, tls=True)]

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        tls = None
        try:
            tls = ctx.tls
        except (OSError, ValueError) as e:
            if "smtps" in sockets:
                raise
            ctx.log.warning("smtp.no_tls", error=str(e))
        run = ctx.home / "run"
        auth = Authenticator(ctx.store, throttle_for(ctx.store, run),
                             LoginCache(ttl=900.0, shared_dir=run / "logincache-smtp",
                                        key=ctx.login_key),
                             queue=lambda: ctx.settings.limits.auth_queue)
        self.handler = SmtpHandler(store=ctx.store, settings=lambda: ctx.settings, log=ctx.log,
                                   tls=tls, ingest=ctx.ingest, tracker=self.tracker, auth=auth,
                                   srs=Srs(ctx.home), tracer=ctx.tracer)
        for name, sock in sockets.items():
            implicit = name == "smtps"
            server = await loop.create_server(
                lambda name=name, implicit=implicit: self._protocol(name, implicit),
                sock=sock, ssl=tls if implicit else None,
                ssl_handshake_timeout=30 if implicit else None,
                backlog=ctx.settings.limits.listen_backlog)
            self.servers.append(server)
        self._sweeper = loop.create_task(self._sweep())
        ctx.log.info("smtp.started", listeners=",".join(sorted(sockets)))

    def _protocol(self, listener: str, implicit_tls: bool) -> SmtpProtocol:
        sid = f"{self._prefix}.{next(self._ids)}"
        session = Session(sid=sid, ip="", port=0, listener=listener, tls=implicit_tls)
        return SmtpProtocol(self.handler, session, on_open=self._opened, on_done=self._closed)

    def _opened(self, proto: SmtpProtocol) -> None:
        proto.session.ip, proto.session.port = peer_address(proto.transport.get_extra_info("peername"))
        self.tracker.add(proto, proto.session.ip)

    def _closed(self, proto: SmtpProtocol) -> None:
        self.tracker.remove(proto, proto.session.ip)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for p in list(self.tracker.sessions):
                if p.deadline < now:
                    p.timed_out()

    async def stop(self, timeout: float) -> None:
        for server in self.servers:
            server.close()
        await self.tracker.drain(lambda p: p.goodbye(), timeout)
        for p in list(self.tracker.sessions):
            if p.transport is not None:
                p.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.ctx.close_ingest()
        if self.handler is not None:
            self.handler.close()
        self.ctx.log.info("smtp.stopped")


def create(ctx: Any) -> SmtpService:
    return SmtpService(ctx)

