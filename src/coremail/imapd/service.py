"""The `imap` service: listeners on listen.imap (plain, STARTTLS) and
listen.imaps (implicit TLS), the sessions of one worker process, the IDLE
watcher and the graceful stop.

The supervisor runs several workers, each with its own SO_REUSEPORT sockets;
nothing is shared between them but the store and DIR/run/authfail. So a
change made in another process (another worker's session, POP3, SMTP
delivery) reaches a session in IDLE through the watcher: every half second,
one store query for the (highestmodseq, uidnext) of every folder an idling
session has selected, and only the sessions whose folder moved look further.
"""
from __future__ import annotations

import asyncio
import socket
import ssl

from ..proto.listen import ListenerSpec, SessionTracker
from ..services.login import Authenticator, FailureThrottle, LoginCache
from .session import ImapSession

POLL_INTERVAL = 0.5


class IdleWatcher:
    def __init__(self, store, log) -> None:
        self.store = store
        self.log = log
        self.sessions: set[ImapSession] = set()
        self.task: asyncio.Task | None = None

    def add(self, session: ImapSession) -> None:
        self.sessions.add(session)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, session: ImapSession) -> None:
        self.sessions.discard(session)

    async def _run(self) -> None:
        while self.sessions:
            await asyncio.sleep(POLL_INTERVAL)
            watched = [s for s in self.sessions if s.mailbox is not None]
            if not watched:
                continue
            ids = {s.mailbox.folder_id for s in watched}
            try:
                versions = await asyncio.to_thread(self.store.folder_versions, ids)
            except Exception as e:  # a failed poll must not end IDLE for everyone
                self.log.error("imap.idle_poll_failed", error=repr(e))
                continue
            for s in watched:
                mb = s.mailbox
                if mb is None:
                    continue
                v = versions.get(mb.folder_id)
                if v is None or mb.changed(v):
                    s.poke()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


class ImapService:
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.log = ctx.log
        self.tracker = SessionTracker()
        run = ctx.home / "run"
        self.auth = Authenticator(ctx.store, FailureThrottle(run / "authfail", "imap"),
                                  LoginCache(shared_dir=run / "logincache-imap"))
        self.watcher = IdleWatcher(ctx.store, ctx.log)
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
            self.log.error("imap.tls_unavailable", error=self._tls_error)
            return False
        return True

    def listeners(self) -> list[ListenerSpec]:
        listen = self.ctx.settings.listen
        return [ListenerSpec("imap", listen.imap), ListenerSpec("imaps", listen.imaps, tls=True)]

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for spec in self.listeners():
            sock = sockets.get(spec.name)
            if sock is None:
                continue
            tls = self.ctx.tls if spec.tls else None

            def factory(name=spec.name, implicit=spec.tls):
                return ImapSession(self, name, implicit)

            server = await loop.create_server(factory, sock=sock, ssl=tls, ssl_handshake_timeout=30 if tls else None)
            self.servers.append(server)
        self.log.info("imap.started", listeners=",".join(sockets))

    async def stop(self, timeout: float) -> None:
        """Stop accepting, say * BYE to every session between commands, then close."""
        for server in self.servers:
            server.close()
        self.watcher.stop()
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


def create(ctx) -> ImapService:
    return ImapService(ctx)
