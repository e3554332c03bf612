"""The outbound queue of the SQL store (a mixin of SqlStore): entries, their
recipients, and the leases by which exactly one deliveragent holds an entry,
with per-recipient marks written as soon as a remote server answers. The
queue's crash-safety rules read in one place: an entry is sent only by the
agent that claimed it.
"""
from __future__ import annotations

import time
from typing import Sequence

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..interfaces import AlreadyExists, BlobRef, Queued, QueueEntry, QueueRecipient
from . import schema as t


class QueueStore:
    # Provided by SqlStore.
    _write: object
    _read: object
    _orphans: object
    blobs: object

    def enqueue(self, *, queue_id: str, blob: BlobRef, sender: str, recipients: Sequence[str],
                kind: str = "out") -> QueueEntry:
        try:
            with self._write() as c:
                self._insert_queued(c, [Queued(queue_id, blob, sender, tuple(recipients), kind)],
                                    time.time())
        except IntegrityError:
            raise AlreadyExists(f"the queue already holds {queue_id}") from None
        entry = self.queue_get(queue_id)
        assert entry is not None
        return entry

    @staticmethod
    def _insert_queued(c: Connection, queued: Sequence[Queued], now: float) -> None:
        """Inside a write transaction; a taken id raises IntegrityError, which
        rolls the whole transaction back."""
        c.execute(insert(t.queue), [dict(
            id=q.queue_id, blob_id=q.blob.id, sender=q.sender, kind=q.kind,
            size=q.blob.size, created=now, next_attempt=now, attempts=0, last_error="")
            for q in queued])
        c.execute(insert(t.queue_recipients), [
            dict(queue_id=q.queue_id, address=r, status="pending", last_error="", attempts=0)
            for q in queued for r in dict.fromkeys(q.recipients)])

    def _queue_entries(self, c: Connection, q) -> list[QueueEntry]:
        rows = c.execute(q).all()
        if not rows:
            return []
        rmap: dict[str, list[QueueRecipient]] = {}
        qr = t.queue_recipients
        for r in c.execute(select(qr).where(qr.c.queue_id.in_([r.id for r in rows]))
                           .order_by(qr.c.address)):
            rmap.setdefault(r.queue_id, []).append(
                QueueRecipient(r.address, r.status, r.last_error, r.attempts))
        return [QueueEntry(r.id, r.blob_id, r.sender, r.created, r.next_attempt, r.attempts,
                           r.last_error, tuple(rmap.get(r.id, ())), int(r.size), r.kind)
                for r in rows]

    def queue_list(self) -> list[QueueEntry]:
        with self._read() as c:
            return self._queue_entries(c, select(t.queue).order_by(t.queue.c.created))

    def queue_get(self, queue_id: str) -> QueueEntry | None:
        with self._read() as c:
            got = self._queue_entries(c, select(t.queue).where(t.queue.c.id == queue_id))
        return got[0] if got else None

    def queue_update(self, queue_id: str, *, recipients: Sequence[QueueRecipient],
                     next_attempt: float, last_error: str) -> None:
        qr = t.queue_recipients
        with self._write() as c:
            c.execute(update(t.queue).where(t.queue.c.id == queue_id).values(
                next_attempt=next_attempt, last_error=last_error,
                attempts=t.queue.c.attempts + 1, lease_owner=None, lease_until=None))
            for r in recipients:
                c.execute(update(qr).where(and_(qr.c.queue_id == queue_id,
                                                qr.c.address == r.address))
                          .values(status=r.status, last_error=r.last_error, attempts=r.attempts))

    def queue_delete(self, queue_id: str) -> bool:
        with self._write() as c:
            row = c.execute(select(t.queue.c.blob_id).where(t.queue.c.id == queue_id)).first()
            if row is None:
                return False
            c.execute(delete(t.queue_recipients).where(t.queue_recipients.c.queue_id == queue_id))
            c.execute(delete(t.queue).where(t.queue.c.id == queue_id))
            orphans = self._orphans(c, [row.blob_id])
        self.blobs.delete(orphans)
        return True

    def queue_delete_many(self, queue_ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(queue_ids))
        if not ids:
            return 0
        with self._write() as c:
            blobs = list(c.execute(select(t.queue.c.blob_id)
                                   .where(t.queue.c.id.in_(ids))).scalars())
            c.execute(delete(t.queue_recipients).where(t.queue_recipients.c.queue_id.in_(ids)))
            c.execute(delete(t.queue).where(t.queue.c.id.in_(ids)))
            orphans = self._orphans(c, blobs)
        self.blobs.delete(orphans)
        return len(blobs)

    def queue_flush(self, now: float, queue_id: str | None = None) -> int:
        cond = [t.queue.c.next_attempt > now]
        if queue_id is not None:
            cond.append(t.queue.c.id == queue_id)
        with self._write() as c:
            return c.execute(update(t.queue).where(*cond).values(next_attempt=now)).rowcount

    # ------------------------------------------------------------- leases
    # A claim is one UPDATE guarded by the same condition it was selected
    # with, inside an IMMEDIATE transaction: two agents never hold one entry.
    def _unleased(self, now: float):
        q = t.queue
        return or_(q.c.lease_until.is_(None), q.c.lease_until < now)

    def queue_claim(self, owner: str, now: float, until: float, limit: int) -> list[QueueEntry]:
        q = t.queue
        with self._write() as c:
            ids = list(c.execute(select(q.c.id).where(q.c.next_attempt <= now, self._unleased(now))
                                 .order_by(q.c.next_attempt).limit(limit)).scalars())
            if not ids:
                return []
            c.execute(update(q).where(q.c.id.in_(ids), self._unleased(now))
                      .values(lease_owner=owner, lease_until=until))
            return self._queue_entries(c, select(q).where(q.c.id.in_(ids),
                                                           q.c.lease_owner == owner)
                                       .order_by(q.c.next_attempt))

    def queue_renew(self, owner: str, until: float) -> int:
        with self._write() as c:
            return c.execute(update(t.queue).where(t.queue.c.lease_owner == owner)
                             .values(lease_until=until)).rowcount

    def queue_release(self, owner: str, queue_id: str | None = None) -> int:
        q = update(t.queue).where(t.queue.c.lease_owner == owner)
        if queue_id is not None:
            q = q.where(t.queue.c.id == queue_id)
        with self._write() as c:
            return c.execute(q.values(lease_owner=None, lease_until=None)).rowcount

    def queue_lease_owners(self) -> list[str]:
        with self._read() as c:
            return sorted(c.execute(select(t.queue.c.lease_owner).distinct()
                                    .where(t.queue.c.lease_owner.is_not(None))).scalars())

    def queue_mark(self, queue_id: str, recipients: Sequence[QueueRecipient]) -> None:
        qr = t.queue_recipients
        with self._write() as c:
            for r in recipients:
                c.execute(update(qr).where(and_(qr.c.queue_id == queue_id,
                                                qr.c.address == r.address))
                          .values(status=r.status, last_error=r.last_error, attempts=r.attempts))
