"""The `deliveragent` service: no listening ports, one process that works the
outbound queue (coremail.queue.scheduler) until told to stop. It also purges
removed messages' blobs now and then (Store.purge_removed), so they go even
where no IMAP or POP3 process runs to do it, and once an hour old trace
events, QRESYNC's old expunge records (Store.trim_vanished) and the
intelligent score's expired tokens (Store.bayes_expire, `antispam.bayes_*`)."""
from __future__ import annotations

import asyncio
import functools
import socket
import sys
import time

from ..store.interfaces import PURGE_GRACE, VANISHED_KEEP
from .scheduler import DeliverAgent

PURGE_EVERY = 60.0
TRACE_PURGE_EVERY = 3600.0   # message trace events older than trace.keep go
GRACE = PURGE_GRACE


class DeliverAgentService:
    def __init__(self, ctx):
        self.ctx = ctx
        self.agent = DeliverAgent(ctx)
        self._purge: asyncio.Task | None = None

    def listeners(self) -> list:
        return []

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        # Database work runs in threads; a short GIL switch interval lets the
        # event loop read a remote 250 (and note it in the journal) sooner,
        # which narrows the window in which a crash causes a duplicate.
        # Process-wide by nature (the interpreter has one), and this process
        # runs only the deliveragent.
        sys.setswitchinterval(0.0005)
        await self.agent.start()
        self._purge = asyncio.get_running_loop().create_task(self._purge_removed())
        self._trace_purge = asyncio.get_running_loop().create_task(self._purge_trace())

    async def _purge_trace(self) -> None:
        while True:
            keep = float(self.ctx.settings.trace.keep)
            await self._housekeep("trace_purge", self.ctx.store.trace_purge, time.time() - keep)
            await self._housekeep("vanished_trim", self.ctx.store.trim_vanished, time.time() - VANISHED_KEEP)
            a = self.ctx.settings.antispam
            after = float(a.bayes_expire_after)
            if after or a.bayes_max_tokens:
                expire = functools.partial(self.ctx.store.bayes_expire, rare=a.bayes_expire_count,
                                           largest=a.bayes_max_tokens)
                await self._housekeep("bayes_expire", expire, time.time() - after if after else 0.0)
            await asyncio.sleep(TRACE_PURGE_EVERY)

    async def _housekeep(self, what: str, fn, before: float) -> None:
        """One store clean-up in a thread, logged when it removed anything;
        a failure is logged and tried again next time."""
        try:
            gone = await asyncio.to_thread(fn, before)
        except Exception as e:
            self.ctx.log.error(f"deliveragent.{what}_failed", error=repr(e))
            return
        if gone:
            self.ctx.log.info(f"deliveragent.{what}", removed=gone)

    async def _purge_removed(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY)
            try:
                purged = await asyncio.to_thread(self.ctx.store.purge_removed, None, GRACE)
            except Exception as e:   # tried again next time
                self.ctx.log.error("deliveragent.purge_failed", error=repr(e))
                continue
            if purged:
                self.ctx.log.info("deliveragent.purged", blobs=purged)

    async def stop(self, timeout: float) -> None:
        if self._purge is not None:
            self._purge.cancel()
            self._trace_purge.cancel()
        await self.agent.stop(timeout)


def create(ctx) -> DeliverAgentService:
    return DeliverAgentService(ctx)
