"""What the mail-access services (POP3, IMAP) share: a plain listener with
an in-band TLS upgrade and an implicit-TLS one, the TLS context (reported
once if the certificate cannot be loaded), the sessions of one worker, and a
graceful stop that says goodbye to every session before closing it.

A subclass names its listeners (`PLAIN`, `IMPLICIT`: keys of [listen]) and
makes its sessions (`make_session(listener, implicit_tls)`); a session has
`shutdown()`, `transport` and `task`.
"""
from __future__ import annotations

import asyncio
import socket
import ssl

from .listen import ListenerSpec, SessionTracker


class AccessService:
    PLAIN = ""
    IMPLICIT = ""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.log = ctx.log
        self.tracker = SessionTracker()
        self.servers: list[asyncio.AbstractServer] = []
        self._tls_error: str | None = None

    @property
    def settings(self):
        return self.ctx.settings

    def tls_context(self) -> ssl.SSLContext:
        return self.ctx.tls

    def tls_available(self) -> bool:
        if self._tls_error is not None:
            return False
        try:
            self.ctx.tls
        except (OSError, ssl.SSLError) as e:
            self._tls_error = str(e)
            self.log.error(f"{self.PLAIN}.tls_unavailable", error=self._tls_error)
            return False
        return True

    def listeners(self) -> list[ListenerSpec]:
        listen = self.ctx.settings.listen
        return [ListenerSpec(self.PLAIN, getattr(listen, self.PLAIN)),
                ListenerSpec(self.IMPLICIT, getattr(listen, self.IMPLICIT), tls=True)]

    def make_session(self, listener: str, implicit_tls: bool) -> asyncio.Protocol:
        raise NotImplementedError

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for spec in self.listeners():
            sock = sockets.get(spec.name)
            if sock is None:
                continue
            tls = self.ctx.tls if spec.tls else None

            def factory(name=spec.name, implicit=spec.tls):
                return self.make_session(name, implicit)
            self.servers.append(await loop.create_server(
                factory, sock=sock, ssl=tls, ssl_handshake_timeout=30 if tls else None,
                backlog=self.settings.limits.listen_backlog))
        self.log.info(f"{self.PLAIN}.started", listeners=",".join(sockets))

    async def stop(self, timeout: float) -> None:
        """Stop accepting, let each session say its goodbye between commands,
        wait up to `timeout` for commands in flight, then close the rest."""
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
