"""Removed messages and live views (a mixin of SqlStore): why a blob outlives
the message row that named it.

Every removal of a message from a folder writes a `removed` row (blob,
folder, the folder's modseq after the removal) in the removing transaction.
Each IMAP or POP3 process publishes, per folder, the lowest modseq its
sessions are synchronised to (`views`, under a lease). `purge_removed`
forgets removals older than the grace time that no live view predates, and
deletes a blob once no message, queue entry or remaining removal names it.
"""
from __future__ import annotations

import time
from typing import Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, select

from ..interfaces import PURGE_GRACE
from . import schema as t

# A dead process's views stop counting at their lease's end; its rows are
# deleted this much later (a live process renews long before).
_STALE_AFTER = 3600.0


class ViewStore:
    # Provided by SqlStore.
    _write: object
    _read: object
    _orphans: object
    blobs: object

    @staticmethod
    def _record_removed(c: Connection, rows: Iterable[tuple[str, int, int]],
                        now: float | None = None) -> None:
        """(blob_id, folder_id, modseq) of messages just removed, in the same transaction."""
        at = time.time() if now is None else now
        values = [dict(blob_id=b, folder_id=f, modseq=m, at=at) for b, f, m in rows]
        if values:
            c.execute(insert(t.removed), values)

    def publish_views(self, owner: str, views: dict[int, int], until: float) -> None:
        v = t.views
        with self._write() as c:
            c.execute(delete(v).where(v.c.owner == owner))
            if views:
                c.execute(insert(v), [dict(owner=owner, folder_id=f, modseq=m, lease_until=until)
                                      for f, m in views.items()])

    def drop_views(self, owner: str) -> None:
        with self._write() as c:
            c.execute(delete(t.views).where(t.views.c.owner == owner))

    def purge_removed(self, now: float | None = None, grace: float = PURGE_GRACE) -> int:
        now = time.time() if now is None else now
        r, v = t.removed, t.views
        due = r.c.at <= now - grace
        with self._read() as c:   # the usual case, nothing due, costs no write
            if c.execute(select(r.c.id).where(due).limit(1)).first() is None:
                return 0
        with self._write() as c:
            rows = c.execute(select(r.c.id, r.c.blob_id, r.c.folder_id, r.c.modseq)
                             .where(due).order_by(r.c.id).limit(5000)).all()
            fids = list({x.folder_id for x in rows})
            held: dict[int, int] = {}
            for i in range(0, len(fids), 500):
                held.update((int(f), int(m)) for f, m in c.execute(
                    select(v.c.folder_id, func.min(v.c.modseq))
                    .where(v.c.folder_id.in_(fids[i:i + 500]), v.c.lease_until > now)
                    .group_by(v.c.folder_id)))
            free = [x for x in rows if held.get(x.folder_id, x.modseq) >= x.modseq]
            ids = [x.id for x in free]
            for i in range(0, len(ids), 500):
                c.execute(delete(r).where(r.c.id.in_(ids[i:i + 500])))
            c.execute(delete(v).where(v.c.lease_until < now - _STALE_AFTER))
            orphans = self._orphans(c, [x.blob_id for x in free])
        self.blobs.delete(orphans)
        return len(orphans)

    @staticmethod
    def _still_removed(c: Connection, ids: Sequence[str]) -> set[str]:
        """Of these blobs, those a removal not yet purged still names."""
        return set(c.execute(select(t.removed.c.blob_id)
                             .where(t.removed.c.blob_id.in_(list(ids)))).scalars())
