"""The intelligent score's counts (a mixin of SqlStore): per model and
hashed token the spam and ham sightings, per model the messages trained, and
the digests of what was learnt.

A training batch is one transaction of increments: an upsert (SQLite and
PostgreSQL both have INSERT .. ON CONFLICT DO UPDATE) adds the batch's
summed deltas, so two nodes training at once never lose a count, and rows
that an undo brought to zero are deleted. Each token row also keeps the day
it was last trained or scored, for expiry."""
from __future__ import annotations

import time
from typing import Sequence

from sqlalchemy import Connection, Table, and_, bindparam, case, delete, func, select, update

from ..interfaces import BayesItem, BayesOutcome, bayes_day
from . import schema as t

_CHUNK = 500     # bound parameters per IN list
_TOTALS = select(t.bayes_totals.c.owner, t.bayes_totals.c.spam, t.bayes_totals.c.ham).where(
    t.bayes_totals.c.owner.in_(bindparam("owners", expanding=True)))


def _insert(c: Connection, table: Table):
    if c.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _add(c: Connection, table: Table, keys: list[str], rows: list[dict]) -> None:
    """Add the rows' counts to those stored (or store them); a `seen` day
    in the rows replaces the stored one."""
    if not rows:
        return
    stmt = _insert(c, table)
    set_ = {"spam": table.c.spam + stmt.excluded.spam, "ham": table.c.ham + stmt.excluded.ham}
    if "seen" in rows[0]:
        set_["seen"] = stmt.excluded.seen
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_=set_)
    for i in range(0, len(rows), 5000):
        c.execute(stmt, rows[i:i + 5000])


class BayesStore:
    _write: object
    _read: object

    def bayes_totals(self, owners: Sequence[int]) -> dict[int, tuple[int, int]]:
        with self._read() as c:
            return {r[0]: (r[1], r[2]) for r in c.execute(_TOTALS, {"owners": list(owners)})}

    def bayes_lookup(self, owners: Sequence[int], tokens: Sequence[int]
                     ) -> tuple[dict[int, tuple[int, int]], dict[tuple[int, int], tuple[int, int]]]:
        """Totals and counts. Scoring runs this for every message, so it goes
        to the driver directly with portable SQL in the driver's placeholder
        style: SQLAlchemy's connection, transaction and IN-list handling cost
        several times the B-tree probes themselves. A read only: no
        transaction is kept (a training in between costs nothing)."""
        toks = list(tokens)
        owners = [int(o) for o in owners]
        counts: dict[tuple[int, int], tuple[int, int]] = {}
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        own = ",".join([mark] * len(owners))
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT owner, spam, ham FROM bayes_totals WHERE owner IN ({own})",
                        tuple(owners))
            totals = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
            owners = [o for o in owners if sum(totals.get(o, (0, 0)))]   # untrained: none
            own = ",".join([mark] * len(owners))
            if owners:
                for i in range(0, len(toks), _CHUNK):
                    part = toks[i:i + _CHUNK]
                    cur.execute(f"SELECT owner, token, spam, ham FROM bayes_tokens WHERE owner "
                                f"IN ({own}) AND token IN ({','.join([mark] * len(part))})",
                                tuple(owners) + tuple(part))
                    counts.update(((o, tok), (sp, h)) for o, tok, sp, h in cur.fetchall())
            cur.close()
            conn.rollback()       # PostgreSQL's driver opened a transaction; end it
        finally:
            conn.close()          # back to the pool
        return totals, counts

    def bayes_size(self, owner: int) -> int:
        tk = t.bayes_tokens
        with self._read() as c:
            return int(c.execute(select(func.count()).select_from(tk)
                                 .where(tk.c.owner == owner)).scalar() or 0)

    def bayes_touch(self, seen: Sequence[tuple[int, int]], now: float | None = None) -> None:
        tk = t.bayes_tokens
        day = bayes_day(time.time() if now is None else now)
        by_owner: dict[int, list[int]] = {}
        for owner, tok in seen:
            by_owner.setdefault(owner, []).append(tok)
        with self._write() as c:
            for owner, toks in by_owner.items():
                for i in range(0, len(toks), _CHUNK):
                    c.execute(update(tk).where(tk.c.owner == owner, tk.c.token.in_(
                        toks[i:i + _CHUNK]), tk.c.seen < day).values(seen=day))

    def bayes_expire(self, before: float, rare: int, largest: int) -> int:
        tk = t.bayes_tokens
        gone = 0
        with self._write() as c:
            gone += c.execute(delete(tk).where(tk.c.seen < bayes_day(before),
                                               tk.c.spam + tk.c.ham <= rare)).rowcount or 0
            if largest > 0:
                over = c.execute(select(tk.c.owner, func.count()).group_by(tk.c.owner)
                                 .having(func.count() > largest)).all()
                for owner, n in over:
                    oldest = (select(tk.c.token).where(tk.c.owner == owner)
                              .order_by(tk.c.seen, tk.c.spam + tk.c.ham).limit(n - largest))
                    gone += c.execute(delete(tk).where(
                        tk.c.owner == owner, tk.c.token.in_(oldest.scalar_subquery()))).rowcount or 0
        return gone

    def bayes_train(self, owner: int, items: Sequence[BayesItem], now: float | None = None
                    ) -> list[BayesOutcome]:
        tk, bl = t.bayes_tokens, t.bayes_learnt
        now = time.time() if now is None else now
        day = bayes_day(now)
        with self._write() as c:
            digests = list({i.digest for i in items})
            known: dict[str, bool] = {}
            for i in range(0, len(digests), _CHUNK):
                known.update((r.digest, bool(r.spam)) for r in c.execute(
                    select(bl.c.digest, bl.c.spam).where(
                        bl.c.owner == owner, bl.c.digest.in_(digests[i:i + _CHUNK]))))
            old = dict(known)
            deltas: dict[int, list[int]] = {}
            total = [0, 0]
            out: list[BayesOutcome] = []
            undone = False
            for item in items:
                prev = known.get(item.digest)
                if prev is item.spam:
                    out.append("known")
                    continue
                steps = [(item.spam, 1)] + ([(prev, -1)] if prev is not None else [])
                for spam, sign in steps:
                    col = 0 if spam else 1
                    total[col] += sign
                    for tok in item.tokens:
                        deltas.setdefault(tok, [0, 0])[col] += sign
                undone = undone or prev is not None
                known[item.digest] = item.spam
                out.append("relearnt" if prev is not None else "learnt")
            if not any(o != "known" for o in out):
                return out
            _add(c, tk, ["owner", "token"], [dict(owner=owner, token=k, spam=s, ham=h, seen=day)
                                             for k, (s, h) in deltas.items() if s or h])
            _add(c, t.bayes_totals, ["owner"], [dict(owner=owner, spam=total[0], ham=total[1])])
            if undone:
                self._bayes_clean(c, owner, [k for k, (s, h) in deltas.items() if s < 0 or h < 0])
            changed = [dict(owner=owner, digest=d, spam=spam, at=now)
                       for d, spam in known.items() if old.get(d) is not spam]
            stmt = _insert(c, bl)
            # An upsert: another node may have learnt the same message meanwhile.
            stmt = stmt.on_conflict_do_update(index_elements=["owner", "digest"], set_={
                "spam": stmt.excluded.spam, "at": stmt.excluded.at})
            for i in range(0, len(changed), 5000):
                c.execute(stmt, changed[i:i + 5000])
        return out

    @staticmethod
    def _bayes_clean(c: Connection, owner: int, tokens: list[int]) -> None:
        """After an undo: no count below zero (the message may have been
        learnt by an older tokenizer), no row left at zero."""
        tk, bt = t.bayes_tokens, t.bayes_totals
        for i in range(0, len(tokens), _CHUNK):
            where = and_(tk.c.owner == owner, tk.c.token.in_(tokens[i:i + _CHUNK]))
            c.execute(update(tk).where(where).values(
                spam=case((tk.c.spam < 0, 0), else_=tk.c.spam),
                ham=case((tk.c.ham < 0, 0), else_=tk.c.ham)))
            c.execute(delete(tk).where(where, tk.c.spam <= 0, tk.c.ham <= 0))
        c.execute(update(bt).where(bt.c.owner == owner).values(
            spam=case((bt.c.spam < 0, 0), else_=bt.c.spam),
            ham=case((bt.c.ham < 0, 0), else_=bt.c.ham)))

    @staticmethod
    def _bayes_drop(c: Connection, owner: int) -> None:
        for table in (t.bayes_tokens, t.bayes_totals, t.bayes_learnt):
            c.execute(delete(table).where(table.c.owner == owner))
