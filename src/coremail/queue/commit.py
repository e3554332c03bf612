"""Group commit of finished queue entries: every entry whose recipients are
all settled is deleted in one transaction with the others that finished
meanwhile, instead of a transaction (and an fsync) per message.

Why it is safe: a finished entry stays leased by this agent until its batch
commits, and its 250s are already in the sent-journal, so an agent killed
before the commit is replayed as "sent" and never sends it again. A failed
commit is retried, never turned into a new delivery attempt.
"""
from __future__ import annotations

import asyncio
import time

MAX_BATCH = 200


class DoneBatcher:
    def __init__(self, agent):
        self.agent = agent
        self._pending: dict[str, tuple[asyncio.Future, float]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue-commit")

    async def done(self, qid: str, created: float) -> None:
        """Returns once ``qid`` is gone from the queue for good."""
        fut = asyncio.get_running_loop().create_future()
        self._pending[qid] = (fut, created)
        self._wake.set()
        await asyncio.shield(fut)

    async def _run(self) -> None:
        agent = self.agent
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = dict(list(self._pending.items())[:MAX_BATCH])
                try:
                    await asyncio.to_thread(agent.store.queue_delete_many, list(batch))
                except Exception as e:  # noqa: BLE001 - keep trying: these were sent
                    agent.log.error("queue.commit_failed", count=len(batch), error=repr(e))
                    await asyncio.sleep(0.5)
                    continue
                now = time.time()
                for qid, (fut, created) in batch.items():
                    del self._pending[qid]
                    agent.journal.committed(qid)
                    agent.log.info("queue.done", qid=qid, delay=f"{now - created:.1f}")
                    if not fut.done():
                        fut.set_result(None)

    async def stop(self, timeout: float = 10) -> None:
        """Commit what is waiting, then stop."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self._wake.set()
            await asyncio.sleep(0.02)
        if self._task is not None:
            self._task.cancel()
