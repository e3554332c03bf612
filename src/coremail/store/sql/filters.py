"""Filter rules and the fingerprint counter (a mixin of SqlStore).

Hits arrive batched ({rule: n} every few seconds from each process), and
fingerprint counts as {(key, slot): n} upserts, so a busy MX writes here a
few times a second at most, never once per message.
"""
from __future__ import annotations

import time
from typing import Sequence

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..interfaces import FilterRule
from . import schema as t


def _rule(r) -> FilterRule:
    return FilterRule(int(r.id), r.kind, r.pattern, r.action, float(r.points), r.user, r.note,
                      int(r.hits), r.last_hit, float(r.created))


class FilterStore:
    # Provided by SqlStore.
    _write: object
    _read: object

    def add_filter_rule(self, kind: str, pattern: str, action: str, *, points: float = 0.0,
                        user: str = "", note: str = "") -> FilterRule:
        now = time.time()
        with self._write() as c:
            r = c.execute(insert(t.filter_rules).values(
                kind=kind, pattern=pattern, action=action, points=points, user=user, note=note,
                hits=0, created=now))
            return FilterRule(int(r.inserted_primary_key[0]), kind, pattern, action, points, user,
                              note, 0, None, now)

    def list_filter_rules(self) -> list[FilterRule]:
        with self._read() as c:
            return [_rule(r) for r in c.execute(select(t.filter_rules)
                                                .order_by(t.filter_rules.c.id))]

    def delete_filter_rule(self, rule_id: int) -> bool:
        with self._write() as c:
            return c.execute(delete(t.filter_rules)
                             .where(t.filter_rules.c.id == rule_id)).rowcount > 0

    def add_filter_hits(self, hits: dict[int, int], now: float | None = None) -> None:
        if not hits:
            return
        f = t.filter_rules
        now = time.time() if now is None else now
        with self._write() as c:
            c.execute(update(f).where(f.c.id == bindparam("rid"))
                      .values(hits=f.c.hits + bindparam("n"), last_hit=now),
                      [dict(rid=k, n=v) for k, v in sorted(hits.items())])

    def fingerprint_counts(self, keys: Sequence[str], since: int) -> dict[str, int]:
        fp = t.fingerprints
        if not keys:
            return {}
        with self._read() as c:
            rows = c.execute(select(fp.c.key, func.sum(fp.c.count))
                             .where(fp.c.key.in_(list(keys)), fp.c.slot >= since)
                             .group_by(fp.c.key))
            return {k: int(n) for k, n in rows}

    def fingerprint_add(self, counts: dict[tuple[str, int], int], forget_before: int) -> None:
        if not counts:
            return
        with self._write() as c:
            c.execute(delete(t.fingerprints).where(t.fingerprints.c.slot < forget_before))
            self._upsert_counts(c, counts)

    @staticmethod
    def _upsert_counts(c: Connection, counts: dict[tuple[str, int], int]) -> None:
        fp = t.fingerprints
        ins = (sqlite_insert if c.dialect.name == "sqlite" else pg_insert)(fp)
        stmt = ins.on_conflict_do_update(index_elements=[fp.c.key, fp.c.slot],
                                         set_={"count": fp.c.count + ins.excluded["count"]})
        # sorted: two PostgreSQL writers take the row locks in one order
        c.execute(stmt, [dict(key=k, slot=s, count=n) for (k, s), n in sorted(counts.items())])
