"""The `pop3` service: listeners on listen.pop3 (plain, STLS) and
listen.pop3s (implicit TLS), the sessions of one worker process, and its
graceful stop. The supervisor runs several workers; each binds its own
SO_REUSEPORT sockets, so nothing here is shared between processes except the
store and the files under DIR/run (maildrop locks, failed-login counts).

Idle timeout: RFC 1939 says an autologout timer must be at least 10 minutes,
so POP3 uses the larger of limits.idle_timeout and 600 s (`min_idle_timeout`).
"""
from __future__ import annotations

import asyncio
import socket
import ssl

from ..proto.listen import ListenerSpec, SessionTracker
from ..services.login import Authenticator, FailureThrottle, LoginCache
from .maildrop import SizeCache
from .session import Pop3Session


class Pop3Service:
    min_idle_timeout = 600.0
    lock_wait = 3.0  # seconds a login waits for another session's maildrop lock

    def __init__(self, ctx):
        self.ctx = ctx
        self.store = ctx.store
        self.log = ctx.log
        self.tracker = SessionTracker()
        run = ctx.home / "run"
        self.lock_dir = run / "locks"
        self.auth = Authenticator(ctx.store, FailureThrottle(run / "authfail"),
                                  LoginCache(ttl=900.0, shared_dir=run / "logincache-pop3"))
        self.sizes = SizeCache()
        self.servers: list[asyncio.AbstractServer] = []
        self._tls_error: str | None = None

    @property
    def settings(self):
        return self.ctx.settings

    def max_line(self) -> int:
        return self.ctx.settings.limits.max_line_length

    def idle_timeout(self) -> float:
        return max(float(self.ctx.settings.limits.idle_timeout), self.min_idle_timeout)

    def tls_context(self) -> ssl.SSLContext:
        return self.ctx.tls

    def tls_available(self) -> bool:
        if self._tls_error is not None:
            return False
        try:
            self.ctx.tls
        except (OSError, ssl.SSLError) as e:
            self._tls_error = str(e)
            self.log.error("pop3.tls_unavailable", error=self._tls_error)
            return False
        return True

    def listeners(self) -> list[ListenerSpec]:
        listen = self.ctx.settings.listen
        return [ListenerSpec("pop3", listen.pop3), ListenerSpec("pop3s", listen.pop3s, tls=True)]

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for spec in self.listeners():
            sock = sockets.get(spec.name)
            if sock is None:
                continue
            tls = self.ctx.tls if spec.tls else None

            def factory(name=spec.name, implicit=spec.tls):
                return Pop3Session(self, name, implicit)
            server = await loop.create_server(factory, sock=sock, ssl=tls,
                                              ssl_handshake_timeout=30 if tls else None)
            self.servers.append(server)
        self.log.info("pop3.started", listeners=",".join(sockets))

    async def stop(self, timeout: float) -> None:
        """Stop accepting, tell every session "-ERR [SYS/TEMP] server shutting
        down" (its DELEs are not applied), wait for commands in flight."""
        for server in self.servers:
            server.close()
        await self.tracker.drain(lambda s: s.shutdown(), timeout)
        for s in list(self.tracker.sessions):
            if s.transport is not None:
                s.transport.abort()
        tasks = [s.task for s in list(self.tracker.sessions) if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()


def create(ctx) -> Pop3Service:
    return Pop3Service(ctx)
