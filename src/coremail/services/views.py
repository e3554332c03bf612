"""What this process's live sessions still show their clients (RFC 2180 4.1),
published to the store so that no blob a session may still FETCH or RETR is
deleted under it; and the periodic purge of removed messages.

A session calls `hold(key, folder_id, modseq)` when it opens a folder and
each time it is brought up to date (modseq: the folder's highestmodseq its
view reflects), and `release(key)` when it leaves. One task per process
publishes, per folder, the lowest modseq its sessions hold: within
PUBLISH_DELAY of a change, in one write for all of them, under a lease it
renews; removals are kept for the store's grace time (PURGE_GRACE, well above
PUBLISH_DELAY) so a view published late still counts. Every PURGE_EVERY
seconds it asks the store to purge what no live view needs any more.
IMAP, POP3 and the webmail share it.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time

from ..store.interfaces import PURGE_GRACE

PUBLISH_DELAY = 0.5
LEASE = 300.0
RENEW_EVERY = 60.0
PURGE_EVERY = 30.0


class Views:
    def __init__(self, store, log, *, purge_every: float = PURGE_EVERY,
                 grace: float = PURGE_GRACE) -> None:
        self.store = store
        self.log = log
        self.purge_every = purge_every
        self.grace = grace
        self.publish_delay = PUBLISH_DELAY
        self.owner = ""
        self._held: dict[object, tuple[int, int]] = {}
        self._lock = threading.Lock()   # sessions may hold from a store thread
        self._published: dict[int, int] | None = None
        self._renewed = 0.0
        self._purged = 0.0
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------ sessions
    def hold(self, key: object, folder_id: int, modseq: int) -> None:
        with self._lock:
            self._held[key] = (folder_id, modseq)
        if self._task is None:
            self._start()

    def release(self, key: object) -> None:
        with self._lock:
            self._held.pop(key, None)

    def current(self) -> dict[int, int]:
        """folder id -> the lowest modseq a session of this process holds."""
        with self._lock:
            held = list(self._held.values())
        out: dict[int, int] = {}
        for fid, modseq in held:
            if modseq < out.get(fid, modseq + 1):
                out[fid] = modseq
        return out

    # ------------------------------------------------------------ the task
    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:   # a store thread: the loop's next hold starts it
            return
        # made here, in the worker that runs the sessions (not in a parent before fork)
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.publish_delay)
            try:
                await self.step(time.monotonic())
            except Exception as e:  # a failed round is retried at the next one
                self.log.error("views.failed", owner=self.owner, error=repr(e))

    async def step(self, now: float) -> None:
        """One round: publish if the views changed or the lease is due, purge if due."""
        views = self.current()
        if views != self._published or now - self._renewed >= RENEW_EVERY:
            await asyncio.to_thread(self.store.publish_views, self.owner, views,
                                    time.time() + LEASE)
            self._published, self._renewed = views, now
        if now - self._purged >= self.purge_every:
            self._purged = now
            purged = await asyncio.to_thread(self.store.purge_removed, None, self.grace)
            if purged:
                self.log.info("views.purged", owner=self.owner, blobs=purged)

    async def stop(self) -> None:
        """At the service's stop: the process's views go with it."""
        if self._task is None:
            return
        self._task.cancel()
        self._task = None
        try:
            await asyncio.to_thread(self.store.drop_views, self.owner)
        except Exception as e:
            self.log.error("views.failed", owner=self.owner, error=repr(e))
