"""Filter rules and the fingerprint counter of the memory store (a mixin of
MemoryStore), mirroring store/sql/filters.py."""
from __future__ import annotations

import dataclasses
import time
from typing import Sequence

from ..interfaces import FilterRule


class MemoryFilters:
    # Provided by MemoryStore.
    _lock: object
    _ids: dict
    _rules: dict[int, FilterRule]
    _fingerprints: dict[tuple[str, int], int]

    def add_filter_rule(self, kind: str, pattern: str, action: str, *, points: float = 0.0,
                        user: str = "", note: str = "") -> FilterRule:
        with self._lock:
            rule = FilterRule(next(self._ids["rule"]), kind, pattern, action, points, user, note,
                              0, None, time.time())
            self._rules[rule.id] = rule
            return rule

    def list_filter_rules(self) -> list[FilterRule]:
        with self._lock:
            return [self._rules[k] for k in sorted(self._rules)]

    def delete_filter_rule(self, rule_id: int) -> bool:
        with self._lock:
            return self._rules.pop(rule_id, None) is not None

    def add_filter_hits(self, hits: dict[int, int], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            for rid, n in hits.items():
                r = self._rules.get(rid)
                if r is not None:
                    self._rules[rid] = dataclasses.replace(r, hits=r.hits + n, last_hit=now)

    def fingerprint_counts(self, keys: Sequence[str], since: int) -> dict[str, int]:
        wanted = set(keys)
        out: dict[str, int] = {}
        with self._lock:
            for (k, slot), n in self._fingerprints.items():
                if k in wanted and slot >= since:
                    out[k] = out.get(k, 0) + n
        return out

    def fingerprint_add(self, counts: dict[tuple[str, int], int], forget_before: int) -> None:
        with self._lock:
            for key in [k for k in self._fingerprints if k[1] < forget_before]:
                del self._fingerprints[key]
            for key, n in counts.items():
                self._fingerprints[key] = self._fingerprints.get(key, 0) + n
