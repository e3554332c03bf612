"""The outbound queue for administrators (`coremail queue`, the webadmin):
list it in words (one line per queued message with its id, age, sender,
the recipients still waiting and why, in the same explanations as the
bounces, mail.dsn.explain), retry everything now, delete one message."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta

from ..mail.dsn import RecipientFailure, explain
from ..obs.trace import DirectTracer, Tracer
from ..store.interfaces import QueueEntry, Store

_STATUS = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\s+(.*)$", re.S)


def age(seconds: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n:
            return f"{int(seconds // n)}{unit}"
    return f"{int(max(seconds, 0))}s"


def in_words(recipient: str, last_error: str, queued_for: float) -> str:
    """"<what happened> (<the reply>)" for a last_error kept as "<status> <text>"."""
    m = _STATUS.match(last_error.strip())
    if not m:
        return last_error
    status, text = m.groups()
    what, _ = explain(RecipientFailure(recipient=recipient, status=status, action="delayed",
                                       diagnostic=text),
                      queued_for=timedelta(seconds=queued_for))
    return f"{what} ({' '.join(text.split())})"


@dataclass(frozen=True)
class QueueRow:
    """One queued message as `coremail queue list` and the webadmin show it."""

    id: str
    age: str
    sender: str
    recipients: tuple[str, ...]     # those still waiting
    why: str                        # the last error in words, or "not tried yet"
    next_try: str                   # "in 5m", "now", or "" when not tried yet
    size: int
    attempts: int
    created: float


def row(entry: QueueEntry, now: float | None = None) -> QueueRow:
    now = time.time() if now is None else now
    waiting = [r for r in entry.recipients if r.status == "pending"]
    if not entry.last_error:
        why = "not tried yet"
    else:
        first = waiting[0].address if waiting else (entry.recipients[0].address
                                                     if entry.recipients else "")
        why = in_words(first, entry.last_error, now - entry.created)
    nxt = ""
    if entry.last_error:
        nxt = f"in {age(entry.next_attempt - now)}" if entry.next_attempt > now else "now"
    return QueueRow(entry.id, age(now - entry.created), entry.sender or "<>",
                    tuple(r.address for r in waiting), why, nxt, entry.size, entry.attempts,
                    entry.created)


def describe(entry: QueueEntry, now: float | None = None) -> str:
    r = row(entry, now)
    retry = f"; next try {r.next_try}" if r.next_try.startswith("in ") else ""
    return f"{r.id}\t{r.age}\t{r.sender}\t{','.join(r.recipients) or '-'}\t{r.why}{retry}"


class QueueAdmin:
    """Blocking (the store): the queue operations an administrator has."""

    def __init__(self, store: Store, tracer: Tracer | None = None):
        self.store = store
        self.tracer = tracer or DirectTracer(store.trace_add, service="admin")

    def lines(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return [describe(e, now) for e in self.store.queue_list()]

    def rows(self, now: float | None = None) -> list[QueueRow]:
        now = time.time() if now is None else now
        return [row(e, now) for e in self.store.queue_list()]

    def flush(self, queue_id: str | None = None) -> int:
        """Every queued message (or the one named) is retried now; how many."""
        return self.store.queue_flush(time.time(), queue_id)

    def delete(self, queue_id: str, by: str = "") -> bool:
        """Drop one queued message without a bounce; False if there is none.
        ``by`` names who did it, for the message trace."""
        entry = self.store.queue_get(queue_id)
        if not self.store.queue_delete(queue_id):
            return False
        if entry is not None:
            waiting = tuple(r.address for r in entry.recipients if r.status == "pending")
            self.tracer.emit("deleted", queue_id, f"deleted from the queue by {by or 'an administrator'}"
                             f" (no bounce sent); it was still waiting for "
                             f"{', '.join(waiting) or 'nobody'}", sender=entry.sender,
                             recipients=waiting, details={"by": by})
        return True
