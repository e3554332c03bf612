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

from ..proto.access import AccessService
from ..services.login import Authenticator, FailureThrottle, LoginCache
from ..services.mailboxes import Mailboxes
from ..services.spamlearn import Learner
from ..services.views import Views
from .commands import CommandTable
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


class ImapService(AccessService):
    PLAIN, IMPLICIT = "imap", "imaps"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        run = ctx.home / "run"
        self.auth = Authenticator(ctx.store, FailureThrottle(run / "authfail"),
                                  LoginCache(shared_dir=run / "logincache-imap", key=ctx.login_key),
                                  queue=lambda: ctx.settings.limits.auth_queue)
        self.watcher = IdleWatcher(ctx.store, ctx.log)
        self.views = Views(ctx.store, ctx.log)
        self.commands = CommandTable()
        self._mailboxes: Mailboxes | None = None

    @property
    def mailboxes(self) -> Mailboxes:
        """Made on first use, in the worker (the ingest owns threads)."""
        if self._mailboxes is None:
            self._mailboxes = Mailboxes(self.ctx.store, self.ctx.ingest,
                                        lambda: int(self.ctx.settings.limits.max_message_size),
                                        Learner(self.ctx.store, self.ctx.log))
        return self._mailboxes

    def make_session(self, listener: str, implicit_tls: bool) -> ImapSession:
        return ImapSession(self, listener, implicit_tls)  # says * BYE when shut down

    async def stop(self, timeout: float) -> None:
        self.watcher.stop()
        await super().stop(timeout)
        if self._mailboxes is not None and self._mailboxes.learner is not None:
            await asyncio.to_thread(self._mailboxes.learner.wait_idle, min(timeout, 10.0))
        await self.views.stop()
        await self.ctx.close_ingest()


def create(ctx) -> ImapService:
    return ImapService(ctx)
