"""The outbound queue of the memory store (a mixin of MemoryStore): entries,
their recipients and the leases by which exactly one deliveragent holds an
entry. The rules mirror store/sql/queue.py: a claim takes only due entries
whose lease is absent or expired, and queue_update ends the lease.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Sequence

from ..interfaces import AlreadyExists, BlobRef, Queued, QueueEntry, QueueRecipient


@dataclass
class _Entry:
    id: str
    blob_id: str
    sender: str
    kind: str
    size: int
    created: float
    next_attempt: float
    attempts: int = 0
    last_error: str = ""
    recipients: dict[str, QueueRecipient] = field(default_factory=dict)
    lease_owner: str | None = None
    lease_until: float | None = None

    def record(self) -> QueueEntry:
        return QueueEntry(self.id, self.blob_id, self.sender, self.created, self.next_attempt,
                          self.attempts, self.last_error,
                          tuple(self.recipients[a] for a in sorted(self.recipients)),
                          self.size, self.kind)

    def mark(self, recipients: Sequence[QueueRecipient]) -> None:
        """Record what happened to known recipients; unknown addresses are ignored."""
        for r in recipients:
            if r.address in self.recipients:
                self.recipients[r.address] = dataclasses.replace(r)


class MemoryQueue:
    # Provided by MemoryStore.
    _lock: object
    _queue: dict[str, _Entry]
    _drop_orphans: object

    def enqueue(self, *, queue_id: str, blob: BlobRef, sender: str, recipients: Sequence[str],
                kind: str = "out") -> QueueEntry:
        with self._lock:
            self._add_queued([Queued(queue_id, blob, sender, tuple(recipients), kind)], time.time())
            return self._queue[queue_id].record()

    def _add_queued(self, queued: Sequence[Queued], now: float) -> None:
        """Under the lock: all the entries or, if an id is taken, none."""
        taken = [q.queue_id for q in queued if q.queue_id in self._queue]
        if taken:
            raise AlreadyExists(f"the queue entry {', '.join(taken)} already exists")
        for q in queued:
            e = self._queue[q.queue_id] = _Entry(q.queue_id, q.blob.id, q.sender, q.kind,
                                                 q.blob.size, now, now)
            e.recipients = {r: QueueRecipient(r) for r in dict.fromkeys(q.recipients)}

    def _by_next_attempt(self, entries) -> list[_Entry]:
        return sorted(entries, key=lambda e: e.next_attempt)

    def queue_list(self) -> list[QueueEntry]:
        with self._lock:
            return [e.record() for e in sorted(self._queue.values(), key=lambda e: e.created)]

    def queue_get(self, queue_id: str) -> QueueEntry | None:
        with self._lock:
            e = self._queue.get(queue_id)
            return e.record() if e else None

    def queue_update(self, queue_id: str, *, recipients: Sequence[QueueRecipient],
                     next_attempt: float, last_error: str) -> None:
        with self._lock:
            e = self._queue.get(queue_id)
            if e is None:
                return
            e.next_attempt, e.last_error = next_attempt, last_error
            e.attempts += 1
            e.lease_owner = e.lease_until = None
            e.mark(recipients)

    def queue_delete(self, queue_id: str) -> bool:
        return self.queue_delete_many([queue_id]) == 1

    def queue_delete_many(self, queue_ids: Sequence[str]) -> int:
        """Many finished entries at once; returns how many were still there."""
        with self._lock:
            gone = [self._queue.pop(i) for i in dict.fromkeys(queue_ids) if i in self._queue]
            self._drop_orphans(e.blob_id for e in gone)
            return len(gone)

    def queue_flush(self, now: float, queue_id: str | None = None) -> int:
        with self._lock:
            waiting = [e for e in self._queue.values() if e.next_attempt > now
                       and (queue_id is None or e.id == queue_id)]
            for e in waiting:
                e.next_attempt = now
            return len(waiting)

    # ------------------------------------------------------------- leases
    def queue_claim(self, owner: str, now: float, until: float, limit: int) -> list[QueueEntry]:
        """Lease due entries nobody holds (or whose lease ran out) to owner."""
        with self._lock:
            free = self._by_next_attempt(
                e for e in self._queue.values()
                if e.next_attempt <= now and (e.lease_until is None or e.lease_until < now))
            for e in free[:limit]:
                e.lease_owner, e.lease_until = owner, until
            return [e.record() for e in free[:limit]]

    def queue_renew(self, owner: str, until: float) -> int:
        with self._lock:
            mine = [e for e in self._queue.values() if e.lease_owner == owner]
            for e in mine:
                e.lease_until = until
            return len(mine)

    def queue_release(self, owner: str, queue_id: str | None = None) -> int:
        with self._lock:
            mine = [e for e in self._queue.values() if e.lease_owner == owner
                    and (queue_id is None or e.id == queue_id)]
            for e in mine:
                e.lease_owner = e.lease_until = None
            return len(mine)

    def queue_lease_owners(self) -> list[str]:
        with self._lock:
            return sorted({e.lease_owner for e in self._queue.values() if e.lease_owner is not None})

    def queue_mark(self, queue_id: str, recipients: Sequence[QueueRecipient]) -> None:
        with self._lock:
            e = self._queue.get(queue_id)
            if e is not None:
                e.mark(recipients)
