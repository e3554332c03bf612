"""The intelligent score's counts in the memory store (a mixin of
MemoryStore), mirroring store/sql/bayes.py."""
from __future__ import annotations

import time
from typing import Sequence

from ..interfaces import BayesItem, BayesOutcome, bayes_day


class MemoryBayes:
    _lock: object
    _bayes_tokens: dict[int, dict[int, list[int]]]     # owner -> token -> [spam, ham]
    _bayes_totals: dict[int, list[int]]
    _bayes_learnt: dict[int, dict[str, tuple[bool, float]]]
    _bayes_seen: dict[int, dict[int, int]]              # owner -> token -> day last seen

    def bayes_totals(self, owners: Sequence[int]) -> dict[int, tuple[int, int]]:
        with self._lock:
            return {o: (v[0], v[1]) for o in owners if (v := self._bayes_totals.get(o))}

    def bayes_lookup(self, owners: Sequence[int], tokens: Sequence[int]
                     ) -> tuple[dict[int, tuple[int, int]], dict[tuple[int, int], tuple[int, int]]]:
        with self._lock:
            return self.bayes_totals(owners), self._counts(owners, tokens)

    def _counts(self, owners: Sequence[int], tokens: Sequence[int]
                ) -> dict[tuple[int, int], tuple[int, int]]:
        with self._lock:
            out = {}
            for o in owners:
                model = self._bayes_tokens.get(o, {})
                for tok in tokens:
                    v = model.get(tok)
                    if v is not None:
                        out[(o, tok)] = (v[0], v[1])
            return out

    def bayes_size(self, owner: int) -> int:
        with self._lock:
            return len(self._bayes_tokens.get(owner, {}))

    def bayes_touch(self, seen: Sequence[tuple[int, int]], now: float | None = None) -> None:
        day = bayes_day(time.time() if now is None else now)
        with self._lock:
            for owner, tok in seen:
                days = self._bayes_seen.get(owner)
                if days is not None and tok in days:
                    days[tok] = max(days[tok], day)

    def bayes_expire(self, before: float, rare: int, largest: int) -> int:
        old = bayes_day(before)
        gone = 0
        with self._lock:
            for owner, model in self._bayes_tokens.items():
                days = self._bayes_seen.setdefault(owner, {})
                drop = [tok for tok, (s, h) in model.items() if days.get(tok, 0) < old and s + h <= rare]
                if largest > 0 and len(model) - len(drop) > largest:
                    going = set(drop)
                    rest = sorted((days.get(tok, 0), s + h, tok) for tok, (s, h) in model.items()
                                  if tok not in going)
                    drop += [tok for _, _, tok in rest[:len(rest) - largest]]
                for tok in drop:
                    del model[tok]
                    days.pop(tok, None)
                gone += len(drop)
        return gone

    def bayes_train(self, owner: int, items: Sequence[BayesItem], now: float | None = None
                    ) -> list[BayesOutcome]:
        now = time.time() if now is None else now
        with self._lock:
            model = self._bayes_tokens.setdefault(owner, {})
            days = self._bayes_seen.setdefault(owner, {})
            totals = self._bayes_totals.setdefault(owner, [0, 0])
            learnt = self._bayes_learnt.setdefault(owner, {})
            out: list[BayesOutcome] = []
            for item in items:
                prev = learnt.get(item.digest, (None,))[0]
                if prev is item.spam:
                    out.append("known")
                    continue
                steps = [(item.spam, 1)] + ([(prev, -1)] if prev is not None else [])
                for spam, sign in steps:
                    col = 0 if spam else 1
                    totals[col] = max(0, totals[col] + sign)
                    for tok in item.tokens:
                        row = model.setdefault(tok, [0, 0])
                        row[col] = max(0, row[col] + sign)
                        days[tok] = bayes_day(now)
                        if row == [0, 0]:
                            del model[tok]
                            del days[tok]
                learnt[item.digest] = (item.spam, now)
                out.append("relearnt" if prev is not None else "learnt")
            return out

    def _bayes_drop(self, owner: int) -> None:
        for d in (self._bayes_tokens, self._bayes_totals, self._bayes_learnt, self._bayes_seen):
            d.pop(owner, None)
