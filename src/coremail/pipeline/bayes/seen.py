"""Which of the model's tokens scored mail met, written in batches so the
store can expire the ones nobody meets any more (Store.bayes_touch): at most
once a day per token, and never a store write on the SMTP path."""
from __future__ import annotations

import threading
import time
from typing import Iterable

from ...store.interfaces import Store, bayes_day

# Tokens already written today, remembered to skip them; past this many the
# memory is cleared (the store's own "only if older" keeps writes idempotent).
REMEMBERED = 200_000


class SeenTokens:
    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._day = -1
        self._done: set[tuple[int, int]] = set()
        self._pending: set[tuple[int, int]] = set()

    def note(self, keys: Iterable[tuple[int, int]]) -> bool:
        """Blocking-safe, from any thread: (owner, token) pairs a scored
        message met. True when some are new today (a write is due)."""
        day = bayes_day(time.time())
        with self._lock:
            if day != self._day:
                self._day, self._done = day, set()
            new = [k for k in keys if k not in self._done]
            self._pending.update(new)
            self._done.update(new)
            if len(self._done) > REMEMBERED:
                self._done = set()
            return bool(new)

    def flush(self) -> None:
        """Blocking: write the pending days; kept for the next try on error."""
        with self._lock:
            pending, self._pending = self._pending, set()
        if not pending:
            return
        try:
            self.store.bayes_touch(list(pending))
        except Exception:
            with self._lock:
                self._pending |= pending
