"""One thread per process that takes items from any thread and hands them on
in batches: the log writer (obs.log) and the message trace's writer
(obs.trace) are both one. The thread starts on first use and, after a
fork, again in the child on its first use (the parent's unwritten items
stay the parent's); the at-fork hook is process-wide, so the registry of
started writers is too (weak: it keeps no writer alive).
"""
from __future__ import annotations

import os
import queue
import threading
import time
import weakref
from typing import Any, Sequence

_STARTED: "weakref.WeakSet[BatchThread]" = weakref.WeakSet()


def _after_fork() -> None:
    for w in list(_STARTED):
        w._forked()
    _STARTED.clear()


os.register_at_fork(after_in_child=_after_fork)


class BatchThread:
    """Subclasses say what a batch is for in `handle` (which must not
    raise). After each wake-up the thread sleeps PAUSE seconds so a busy
    process gathers more: one write (and one hand-over of the GIL) per
    pause, not per item."""

    PAUSE = 0.05           # seconds an item may wait for its batch
    BATCH = 1 << 30        # items per batch at most
    NAME = "batch-writer"

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wrote = threading.Condition()
        self._queued = 0      # items put, and handled, for flush()
        self._handled = 0

    def handle(self, batch: Sequence[Any]) -> None:
        raise NotImplementedError

    def put(self, item: Any) -> None:
        if self._thread is None:
            self._start()
        self._queued += 1
        self._q.put(item)

    @property
    def pending(self) -> int:
        return self._queued - self._handled

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.NAME, daemon=True)
                self._thread.start()
                _STARTED.add(self)

    def _forked(self) -> None:
        """In a child after fork(): the thread did not come along."""
        self._reset()

    def _run(self) -> None:
        q = self._q
        while True:
            item = q.get()
            time.sleep(self.PAUSE)
            batch = [item]
            while len(batch) < self.BATCH:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is None for b in batch)
            items = [b for b in batch if b is not None]
            if items:
                self.handle(items)
            with self._wrote:
                self._handled += len(items)
                self._wrote.notify_all()
            if stop:
                return

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until what was put so far has been handled."""
        target = self._queued
        deadline = time.monotonic() + timeout
        with self._wrote:
            while self._handled < target and time.monotonic() < deadline:
                self._wrote.wait(0.05)

    def close(self, timeout: float = 5.0) -> None:
        """Handle what is queued (call before the process exits)."""
        t = self._thread
        if t is not None and t.is_alive():
            self._q.put(None)
            t.join(timeout)
        self._thread = None
