"""The message trace's events and the writer that records them off the hot path.

Every service says what happened to a message (received, refused, checks,
delivered, queued, each delivery attempt, bounced, deleted) as a `TraceEvent`.
`Tracer.emit` only appends to a queue; one thread per process (obs.batch)
hands whatever has gathered, every PAUSE seconds, to a sink (the store's
`trace_add`, one transaction), so no SMTP session ever waits for the trace. A sink that
fails (a locked or full database) loses that batch, never the mail.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .batch import BatchThread


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


class Tracer(BatchThread):
    """Events from any thread, written in batches by one thread (obs.batch).
    ``enabled`` is asked per event (trace.enabled, live); ``on_error`` hears
    of a lost batch."""

    PAUSE = 0.5            # seconds: one transaction per pause
    MAX_PENDING = 200_000  # past this (a sink stuck for long) new events are dropped
    NAME = "trace-writer"

    def __init__(self, sink: Sink, *, service: str = "",
                 enabled: Callable[[], bool] = lambda: True,
                 on_error: Callable[[Exception, int], None] | None = None):
        super().__init__()
        self.sink = sink
        self.service = service
        self.enabled = enabled
        self.on_error = on_error

    def emit(self, kind: str, qid: str, text: str, **fields: Any) -> None:
        if not self.enabled():
            return
        if self.pending > self.MAX_PENDING:
            return
        fields.setdefault("service", self.service)
        self.put(TraceEvent(kind, qid, text, **fields))

    def handle(self, batch: Sequence[TraceEvent]) -> None:
        try:
            self.sink(batch)
        except Exception as e:  # noqa: BLE001 - the trace must never stop mail
            if self.on_error is not None:
                self.on_error(e, len(batch))


class DirectTracer(Tracer):
    """For short-lived commands (`coremail queue delete`): each event is
    written at once, there is no hot path to spare."""

    def put(self, event: TraceEvent) -> None:
        self.handle([event])


class NullTracer(Tracer):
    """Records nothing (unit tests, or a caller given no tracer)."""

    def __init__(self) -> None:
        super().__init__(lambda events: None, enabled=lambda: False)
