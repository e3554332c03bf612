"""The `imap` service: listeners on listen.imap (plain, STARTTLS) and
listen.imaps (implicit TLS), the sessions of one worker process, the IDLE
watcher and the graceful stop.

The supervisor runs several workers, each with its own SO_REUSEPORT sockets;
nothing is shared between them but the store and DIR/run/authfail. So a
change made in another process (another worker's session, POP3, SMTP
delivery) reaches a session in IDLE through the watcher: every half second,
one store query for the (highestmodseq, uidnext) of every folder an idling
session has selected, and only the sessions whose folder moved look further.
With a store that notifies (PostgreSQL: LISTEN, fed by a trigger whatever
node made the change) a thread waits for the notifications and wakes the
sessions of those folders at once; the poll then only runs every
NOTIFIED_POLL seconds, in case a notification was lost with a connection.
"""
from __future__ import annotations

import asyncio

from ..proto.access import AccessService
from ..services.login import Authenticator, LoginCache, throttle_for
from ..services.mailboxes import Mailboxes
from ..services.spamlearn import Learner
from ..services.views import Views
from .commands import CommandTable
from .session import ImapSession

POLL_INTERVAL = 0.5
NOTIFIED_POLL = 10.0


class IdleWatcher:
    def __init__(self, store, log) -> None:
        self.store = store
        self.log = log
        self.sessions: set[ImapSession] = set()
        self.task: asyncio.Task | None = None
        self.listener: asyncio.Task | None = None
        self.interval = POLL_INTERVAL

    def _listen(self) -> None:
        """Start the notification listener once, if the store has one."""
        if self.listener is not None or not getattr(self.store, "shared", False):
            return
        self.listener = asyncio.get_running_loop().create_task(self._notified())

    async def _notified(self) -> None:
        loop = asyncio.get_running_loop()
        feed = None
        while True:
            try:
                if feed is None:
                    feed = await asyncio.to_thread(self.store.folder_changes)
                    if feed is None:
                        return
                    self.interval = NOTIFIED_POLL
                changed = await loop.run_in_executor(None, feed.wait, 1.0)
            except asyncio.CancelledError:
                if feed is not None:
                    await asyncio.to_thread(feed.close)
                raise
            except Exception as e:  # noqa: BLE001 - back to polling until it reconnects
                self.log.warning("imap.idle_listen_failed", error=repr(e))
                self.interval = POLL_INTERVAL
                if feed is not None:
                    await asyncio.to_thread(feed.close)
                feed = None
                await asyncio.sleep(5)
                continue
            if changed:
                for s in list(self.sessions):
                    if s.mailbox is not None and s.mailbox.folder_id in changed:
                        s.poke()

    def add(self, session: ImapSession) -> None:
        self.sessions.add(session)
        self._listen()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, session: ImapSession) -> None:
        self.sessions.discard(session)

    async def _run(self) -> None:
        while self.sessions:
            await asyncio.sleep(self.interval)
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
        for task in (self.task, self.listener):
            if task is not None:
                task.cancel()


class ImapService(AccessService):
    PLAIN, IMPLICIT = "imap", "imaps"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        run = ctx.home / "run"
        self.auth = Authenticator(ctx.store, throttle_for(ctx.store, run),
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
