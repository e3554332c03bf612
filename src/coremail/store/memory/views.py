"""Removed messages and live views of the memory store (a mixin of
MemoryStore), mirroring store/sql/views.py: a removal is recorded with the
folder's modseq, processes publish the lowest modseq their sessions show,
and purge_removed deletes a blob only when no live view predates its
removals and nothing refers to it any more.
"""
from __future__ import annotations

import time
from typing import Iterable

from ..interfaces import PURGE_GRACE

_STALE_AFTER = 3600.0


class MemoryViews:
    # Provided by MemoryStore.
    _lock: object
    _drop_orphans: object
    _removed: list[tuple[str, int, int, float]]        # blob, folder, modseq, at
    _views: dict[str, tuple[dict[int, int], float]]    # owner -> (views, until)

    def _record_removed(self, rows: Iterable[tuple[str, int, int]]) -> None:
        now = time.time()
        self._removed.extend((b, f, m, now) for b, f, m in rows)

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
