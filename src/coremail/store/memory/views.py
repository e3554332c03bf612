"""Removed messages and live views of the memory store (a mixin of
MemoryStore), mirroring store/sql/views.py: a removal is recorded with the
folder's modseq, processes publish the lowest modseq their sessions show,
and purge_removed deletes a blob only when no live view predates its
removals and nothing refers to it any more.
"""
from __future__ import annotations

import time
from typing import Iterable

from ..interfaces import PURGE_GRACE, VANISHED_KEEP_ROWS, merge_ranges, uid_ranges

_STALE_AFTER = 3600.0


class MemoryViews:
    # Provided by MemoryStore.
    _lock: object
    _drop_orphans: object
    _removed: list[tuple[str, int, int, float]]        # blob, folder, modseq, at
    _views: dict[str, tuple[dict[int, int], float]]    # owner -> (views, until)
    _vanished: list[tuple[int, int, int, int, float]]   # folder, modseq, lo, hi, at (lo 0: floor)

    def _record_removed(self, rows: Iterable[tuple[str, int, int]]) -> None:
        now = time.time()
        self._removed.extend((b, f, m, now) for b, f, m in rows)

    def _record_vanished(self, folder_id: int, modseq: int, uids: Iterable[int]) -> None:
        now = time.time()
        self._vanished.extend((folder_id, modseq, lo, hi, now) for lo, hi in uid_ranges(uids))

    def _forget_vanished(self, live_folders: set[int]) -> None:
        """The records of deleted folders go with them (SQL: ON DELETE CASCADE)."""
        self._vanished = [v for v in self._vanished if v[0] in live_folders]

    def vanished_since(self, folder_id: int, modseq: int) -> list[tuple[int, int]] | None:
        with self._lock:
            rows = [v for v in self._vanished if v[0] == folder_id and v[1] > modseq]
        if any(v[2] == 0 for v in rows):
            return None
        return merge_ranges((v[2], v[3]) for v in rows)

    def trim_vanished(self, before: float, keep: int = VANISHED_KEEP_ROWS) -> int:
        with self._lock:
            floors: dict[int, int] = {}
            for f, m, _, _, at in self._vanished:
                if at < before:
                    floors[f] = max(m, floors.get(f, m))
            per: dict[int, list[int]] = {}
            for v in self._vanished:
                per.setdefault(v[0], []).append(v[1])
            for f, mods in per.items():
                if len(mods) > keep:
                    m = sorted(mods, reverse=True)[max(0, keep - 1)]
                    floors[f] = max(m, floors.get(f, m))
            if not floors:
                return 0
            left = [v for v in self._vanished if v[1] > floors.get(v[0], -1)]
            gone = len(self._vanished) - len(left)
            now = time.time()
            self._vanished = left + [(f, m, 0, 0, now) for f, m in floors.items()]
            return gone

    def publish_views(self, owner: str, views: dict[int, int], until: float) -> None:
        with self._lock:
            self._views[owner] = (dict(views), until)

    def drop_views(self, owner: str) -> None:
        with self._lock:
            self._views.pop(owner, None)

    def purge_removed(self, now: float | None = None, grace: float = PURGE_GRACE) -> int:
        now = time.time() if now is None else now
        with self._lock:
            held: dict[int, int] = {}
            for owner, (views, until) in list(self._views.items()):
                if until < now - _STALE_AFTER:
                    del self._views[owner]
                elif until > now:
                    for f, m in views.items():
                        held[f] = min(m, held.get(f, m))
            keep, free = [], []
            for r in self._removed:
                due = r[3] <= now - grace and held.get(r[1], r[2]) >= r[2]
                (free if due else keep).append(r)
            self._removed = keep
            return self._drop_orphans(r[0] for r in free)
