"""The group commit: many messages made durable together.

Messages taken in at about the same time (by any door) are committed as one
batch on a worker thread: their blobs are written, fsync'ed in one
`Blobs.sync`, and all their mailbox rows and queue entries go into one
`Store.deliver` transaction. Only then is each submitter told the outcome.
A batch forms while the previous one is on disk, so a lone message waits for
nothing and twenty share an fsync; two batches overlap (one syncs its blobs
while the other commits).
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ..mail.mime import summarize  # never raises: broken MIME degrades to text/plain
from ..obs.log import Log
from ..store.interfaces import (BlobRef, Delivered, Delivery, Queued, StorageFull, Store,
                                StoreError, User)

MAX_BATCH = 256


@dataclass(frozen=True)
class LocalCopy:
    """One copy of a message in one user's folder."""

    user: User
    folder: str = "INBOX"
    flags: frozenset[str] = frozenset()
    internaldate: float | None = None
    check_quota: bool = True


@dataclass
class Job:
    """One message on its way in. ``parts`` are written as the blob (trace
    headers first); a ``blob`` given instead is a message already stored (a
    queue entry delivered locally) and is not written again."""

    qid: str
    sender: str
    parts: list[bytes] = field(default_factory=list)
    local: list[LocalCopy] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    kind: str = "out"                 # of the queue entry: "out" or "bounce"
    blob: BlobRef | None = None
    blob_id: str | None = None        # for a new blob; default: the queue id
    report_failures: bool = True      # bounce local copies refused at commit (not the queue's)
    meta: dict | None = None          # the summary, if the caller has it already
    arrived: float = field(default_factory=time.time)
    # -- the outcome, filled in by the commit
    stored: list[tuple[LocalCopy, Delivered]] = field(default_factory=list)
    failed: list[tuple[LocalCopy, StoreError]] = field(default_factory=list)
    queued: bool = False
    error: StoreError | None = None   # nothing of this message was kept

    @property
    def accepted(self) -> bool:
        """Some copy is safe: a mailbox row or the queue entry."""
        return self.error is None and (bool(self.stored) or self.queued)

    def content(self) -> bytes:
        return b"".join(self.parts)


def _db_error(e: Exception) -> StoreError:
    text = str(e).lower()
    if "full" in text or "no space" in text:
        return StorageFull("the server's storage is full; please try again later")
    return StoreError("a local error stopped the delivery; please try again later")


class GroupCommitter:
    """Collects jobs from many submitters and commits them in batches on
    worker threads, so an event loop never waits on a disk."""

    PIPELINE = 2   # batches in flight: one syncs its blobs while the other commits

    def __init__(self, store: Store, log: Log,
                 after: Callable[[list[Job]], None] | None = None):
        self.store = store
        self.blobs = store.blobs
        self.log = log
        self.after = after   # called on the commit thread with each committed batch
        self._pool = ThreadPoolExecutor(max_workers=self.PIPELINE, thread_name_prefix="commit")
        self._pending: list[tuple[Job, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()
        self._kick_scheduled = False

    async def submit(self, job: Job) -> Job:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((job, fut))
        if not self._kick_scheduled:
            self._kick_scheduled = True
            loop.call_soon(self._kick)  # submitters finishing in this same tick join the batch
        return await fut

    def _kick(self) -> None:
        self._kick_scheduled = False
        while self._pending and len(self._tasks) < self.PIPELINE:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._pending:
            self._kick()

    async def _run(self, batch: list[tuple[Job, asyncio.Future]]) -> None:
        jobs = [j for j, _ in batch]
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self.commit, jobs)
        except Exception as e:   # commit() catches its own; this is the last guard
            self.log.error("ingest.commit_failed", error=repr(e))
            for j in jobs:
                if not j.accepted:
                    j.error = j.error or StoreError("a local error stopped the delivery; "
                                                    "please try again later")
        for j, fut in batch:
            if not fut.done():
                fut.set_result(j)

    async def close(self) -> None:
        while self._tasks or self._pending:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                self._kick()
                await asyncio.sleep(0)
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------ on the thread
    def commit(self, jobs: list[Job], all_or_none: bool = False) -> None:
        """Blocking: make ``jobs`` durable, filling in each one's outcome.
        all_or_none: every local copy is stored, or none (IMAP MULTIAPPEND)."""
        written: list[Job] = []
        live: list[Job] = []
        for j in jobs:
            if j.blob is not None:
                live.append(j)
                continue
            try:
                j.blob = self.blobs.write(j.parts, blob_id=j.blob_id or j.qid, sync=False)
                written.append(j)
                live.append(j)
            except StoreError as e:
                j.error = e
        try:
            self.blobs.sync([j.blob for j in written if j.blob is not None])
        except StoreError as e:
            self._fail(live, e, written)
            return
        deliveries: list[tuple[Job, LocalCopy, Delivery]] = []
        queued: list[Queued] = []
        for j in live:
            assert j.blob is not None
            if j.local:
                if j.meta is None:
                    j.meta = summarize(j.content() if j.parts else self.blobs.read(j.blob.id))
                for c in j.local:
                    deliveries.append((j, c, Delivery(
                        c.user.id, j.blob, folder=c.folder, flags=c.flags, meta=j.meta,
                        internaldate=c.internaldate or j.arrived, check_quota=c.check_quota)))
            if j.remote:
                queued.append(Queued(j.qid, j.blob, j.sender, tuple(j.remote), j.kind))
        try:
            results = self.store.deliver([d for _, _, d in deliveries], queued,
                                         all_or_none=all_or_none)
        except StoreError as e:  # e.g. StorageFull: the database could not grow
            self.log.warning("ingest.deliver_refused", error=e.text, batch=len(live),
                             cause=repr(e.__cause__) if e.__cause__ is not None else "")
            self._fail(live, e, written)
            return
        except Exception as e:  # the database said no (locked too long, disk full)
            self.log.error("ingest.deliver_failed", error=repr(e), batch=len(live))
            self._fail(live, _db_error(e), written)
            return
        for (j, c, _), r in zip(deliveries, results):
            if isinstance(r, Delivered):
                j.stored.append((c, r))
            else:
                j.failed.append((c, r))
        mine = {id(j) for j in written}
        for j in live:
            j.queued = bool(j.remote)
            if not j.accepted:
                j.error = j.failed[0][1] if j.failed else StorageFull("nothing stored")
                if id(j) in mine:
                    self.blobs.delete([j.blob.id])
        if self.after is not None:
            self.after(jobs)

    def _fail(self, jobs: list[Job], e: StoreError, written: list[Job]) -> None:
        for j in jobs:
            j.error = e
        try:
            self.blobs.delete([j.blob.id for j in written if j.blob is not None])
        except OSError:
            pass
