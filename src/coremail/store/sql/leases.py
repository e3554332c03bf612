"""Queue leases for the deliveragent: which agent holds a queue entry, until
when, and per-recipient marks written as soon as a remote server answers.

Kept apart from store.py (a mixin of SqlStore) so the queue's crash-safety
rules read in one place: an entry is sent only by the agent that claimed it.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import and_, or_, select, update

from ..interfaces import QueueEntry, QueueRecipient
from . import schema as t


class QueueLeases:
    # Provided by SqlStore.
    _write: object
    _read: object
    _queue_entries: object

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
