"""Removed messages and live views (a mixin of SqlStore): why a blob outlives
the message row that named it.

Every removal of a message from a folder writes a `removed` row (blob,
folder, the folder's modseq after the removal) in the removing transaction.
Each IMAP or POP3 process publishes, per folder, the lowest modseq its
sessions are synchronised to (`views`, under a lease). `purge_removed`
forgets removals older than the grace time that no live view predates, and
deletes a blob once no message, queue entry or remaining removal names it.
The same transaction records the UID ranges removed (`vanished`, QRESYNC),
which `trim_vanished` shortens to a floor row once they are old or many.
"""
from __future__ import annotations

import time
from typing import Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, select

from ..interfaces import PURGE_GRACE, VANISHED_KEEP_ROWS, merge_ranges, uid_ranges
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

    @staticmethod
    def _record_vanished(c: Connection, folder_id: int, modseq: int, uids: Iterable[int],
                         now: float | None = None) -> None:
        """QRESYNC's record of the uids a removal took out of a folder (one row per range)."""
        at = time.time() if now is None else now
        values = [dict(folder_id=folder_id, modseq=modseq, lo=lo, hi=hi, at=at)
                  for lo, hi in uid_ranges(uids)]
        if values:
            c.execute(insert(t.vanished), values)

    def vanished_since(self, folder_id: int, modseq: int) -> list[tuple[int, int]] | None:
        v = t.vanished
        with self._read() as c:
            rows = c.execute(select(v.c.lo, v.c.hi).where(
                v.c.folder_id == folder_id, v.c.modseq > modseq)).all()
        if any(r.lo == 0 for r in rows):
            return None   # a floor above modseq: what went before it is not all known
        return merge_ranges((int(r.lo), int(r.hi)) for r in rows)

    def trim_vanished(self, before: float, keep: int = VANISHED_KEEP_ROWS) -> int:
        v = t.vanished
        with self._read() as c:   # nothing due (the usual case) costs no write
            floors = {int(f): int(m) for f, m in c.execute(
                select(v.c.folder_id, func.max(v.c.modseq)).where(v.c.at < before)
                .group_by(v.c.folder_id))}
            crowded = list(c.execute(select(v.c.folder_id).group_by(v.c.folder_id)
                                     .having(func.count() > keep)).scalars())
        if not floors and not crowded:
            return 0
        gone = 0
        now = time.time()
        with self._write() as c:
            for fid in crowded:
                m = c.execute(select(v.c.modseq).where(v.c.folder_id == fid)
                              .order_by(v.c.modseq.desc()).offset(max(0, keep - 1)).limit(1)).scalar()
                if m is not None:
                    floors[int(fid)] = max(floors.get(int(fid), 0), int(m))
            for fid, m in floors.items():
                gone += c.execute(delete(v).where(v.c.folder_id == fid, v.c.modseq <= m)).rowcount
                if c.execute(select(t.folders.c.id).where(t.folders.c.id == fid)).first():
                    c.execute(insert(v).values(folder_id=fid, modseq=m, lo=0, hi=0, at=now))
        return gone

    def publish_views(self, owner: str, views: dict[int, int], until: float) -> None:
        v = t.views
        # no fsync of its own: views only matter while their processes live
        with self._write(durable=False) as c:
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

