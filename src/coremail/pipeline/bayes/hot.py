"""The counts of recently met tokens, kept in the process so scoring a
message asks the store only for the clues it has not met lately: ordinary
mail repeats most of its words, and a store probe costs far more than a
dict look-up. Absent tokens are remembered too (most of a message's words
are in no model), and a model known to be empty is not asked at all.

Never stale past a change of training: every look-up reads the models'
totals (one small query in the same round trip as the misses), and any
change of them, or HOT_FOR seconds, or HOT_MAX entries, starts afresh. What
that misses (a class swap that leaves both totals where they were, or an
expiry) lasts at most HOT_FOR seconds."""
from __future__ import annotations

import threading
import time
from typing import Sequence

from ...store.interfaces import Store

HOT_FOR = 60.0
HOT_MAX = 100_000

Totals = dict[int, tuple[int, int]]
Counts = dict[tuple[int, int], tuple[int, int]]


class HotTokens:
    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._totals: dict[int, tuple[int, int] | None] = {}
        self._since = 0.0
        self._hot: dict[tuple[int, int], tuple[int, int] | None] = {}

    def lookup(self, owners: Sequence[int], tokens: Sequence[int]) -> tuple[Totals, Counts]:
        """Blocking: what Store.bayes_lookup answers, mostly from memory."""
        with self._lock:
            if time.monotonic() - self._since > HOT_FOR or len(self._hot) > HOT_MAX:
                self._totals, self._hot, self._since = {}, {}, time.monotonic()
            hot, known = self._hot, self._totals
        live = [o for o in owners if o not in known or known[o]]   # not known empty
        miss: dict[int, None] = {}
        for o in live:
            miss.update((t, None) for t in tokens if (o, t) not in hot)
        misses = list(miss)
        totals, counts = self.store.bayes_lookup(owners, misses)
        if any(o in known and totals.get(o) != known[o] for o in owners):
            # the training changed: nothing cached holds
            totals, counts = self.store.bayes_lookup(owners, tokens)
            misses, live, hot, known = list(tokens), list(owners), {}, {}
            with self._lock:
                self._hot, self._totals, self._since = hot, {}, time.monotonic()
        if any(o not in known for o in owners):
            with self._lock:
                self._totals = {**self._totals, **{o: totals.get(o) for o in owners}}
        for o in live:
            for t in misses:
                hot[(o, t)] = counts.get((o, t))
        out: Counts = {}
        for o in live:
            for t in tokens:
                v = hot.get((o, t))
                if v is not None:
                    out[(o, t)] = v
        return totals, out
