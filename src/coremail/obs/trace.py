"""The message trace's events and the writer that records them off the hot path.

Every service says what happened to a message (received, refused, checks,
delivered, queued, each delivery attempt, bounced, deleted) as a `TraceEvent`.
`Tracer.emit` only appends to a queue; one thread per process hands whatever
has gathered, every FLUSH_EVERY seconds, to a sink (the store's `trace_add`,
one transaction), so no SMTP session ever waits for the trace. A sink that
fails (a locked or full database) loses that batch, never the mail.
"""
from __future__ import annotations

import os
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

@dataclass(slots=True)
class TraceEvent:
    """One thing that happened to one message. ``kind``: received, refused,
    checks, delivered, forwarded, queued, attempt, sent, bounced, deleted.
    ``qid`` groups a message's
    events; a transaction refused before it got a queue id has a reference
    of its own ("s:" + session id + "." + transaction). ``text`` is the event
    in plain words; ``details`` the facts behind it (ip, helo, host, reply,
    scores ...) for pages and tools."""

    kind: str
    qid: str
    text: str
    at: float = field(default_factory=time.time)
    message_id: str = ""
    sender: str = ""
    recipients: tuple[str, ...] = ()
    service: str = ""
    details: dict[str, Any] = field(default_factory=dict)


Sink = Callable[[Sequence[TraceEvent]], None]

_TRACERS: "weakref.WeakSet[Tracer]" = weakref.WeakSet()


def _after_fork() -> None:
    for t in list(_TRACERS):
        t._forked()
    _TRACERS.clear()


os.register_at_fork(after_in_child=_after_fork)


class Tracer:
    """Events from any thread, written in batches by one thread. ``enabled``
    is asked per event (trace.enabled, live); ``on_error`` hears of a lost batch."""

    FLUSH_EVERY = 0.5      # seconds
    MAX_PENDING = 200_000  # past this (a sink stuck for long) new events are dropped

    def __init__(self, sink: Sink, *, service: str = "",
                 enabled: Callable[[], bool] = lambda: True,
                 on_error: Callable[[Exception, int], None] | None = None):
        self.sink = sink
        self.service = service
        self.enabled = enabled
        self.on_error = on_error
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wrote = threading.Condition()
        self._sent = 0        # events handed to the sink (or lost), for flush()
        self._queued = 0

    def emit(self, kind: str, qid: str, text: str, **fields: Any) -> None:
        if not self.enabled():
            return
        if self._queued - self._sent > self.MAX_PENDING:
            return
        fields.setdefault("service", self.service)
        self.put(TraceEvent(kind, qid, text, **fields))

    def put(self, event: TraceEvent) -> None:
        if self._thread is None:
            self._start()
        self._queued += 1
        self._q.put(event)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="trace-writer",
                                                daemon=True)
                self._thread.start()
                _TRACERS.add(self)

    def _forked(self) -> None:
        """In a child after fork(): its own queue and thread, on first use."""
        self._q = queue.SimpleQueue()
        self._thread = None
        self._lock = threading.Lock()
        self._wrote = threading.Condition()
        self._sent = self._queued = 0

    def _run(self) -> None:
        q = self._q
        while True:
            item = q.get()
            time.sleep(self.FLUSH_EVERY)   # let the batch gather: one transaction per pause
            batch = [item]
            while True:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is None for b in batch)
            events = [b for b in batch if b is not None]
            if events:
                try:
                    self.sink(events)
                except Exception as e:  # noqa: BLE001 - the trace must never stop mail
                    if self.on_error is not None:
                        self.on_error(e, len(events))
            with self._wrote:
                self._sent += len(events)
                self._wrote.notify_all()
            if stop:
                return

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until what was emitted so far has been handed to the sink."""
        target = self._queued
        deadline = time.monotonic() + timeout
        with self._wrote:
            while self._sent < target and time.monotonic() < deadline:
                self._wrote.wait(0.05)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (call before the process exits)."""
        t = self._thread
        if t is not None and t.is_alive():
            self._q.put(None)
            t.join(timeout)
        self._thread = None


class DirectTracer(Tracer):
    """For short-lived commands (`coremail queue delete`): each event is
    written at once, there is no hot path to spare."""

    def put(self, event: TraceEvent) -> None:
        try:
            self.sink([event])
        except Exception as e:  # noqa: BLE001
            if self.on_error is not None:
                self.on_error(e, 1)


class NullTracer(Tracer):
    """Records nothing (unit tests, or a caller given no tracer)."""

    def __init__(self) -> None:
        super().__init__(lambda events: None, enabled=lambda: False)
