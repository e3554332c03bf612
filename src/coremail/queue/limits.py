"""Connection slots for the deliveragent: how many deliveries run at once,
in all and per destination, with the limits read live."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager


class SlotRefused(Exception):
    """The agent is stopping: no new delivery may start."""


class Limiter:
    """Connection slots: at most ``total()`` at once, ``per_key()`` per
    destination. The limits are read at each grant, so a changed setting
    applies without a restart. A freed slot is handed straight to the first
    waiter that fits: waking every waiter to re-check (a Condition) cost a
    measurable share of the loop with hundreds of entries waiting."""

    def __init__(self) -> None:
        self.total = 0
        self.per: dict[str, int] = {}
        self._waiters: list[tuple[str, Callable[[], int], Callable[[], int],
                                  asyncio.Future]] = []
        self.stopping = False

    def stop(self) -> None:
        """Refuse every waiting and future request: a stop waits only for
        the transactions already under way, not for the whole claimed batch."""
        self.stopping = True
        for w in self._waiters:
            if not w[3].done():
                w[3].set_exception(SlotRefused())
        self._waiters = []

    def _fits(self, key: str, total: Callable[[], int], per_key: Callable[[], int]) -> bool:
        return self.total < total() and self.per.get(key, 0) < per_key()

    def _take(self, key: str) -> None:
        self.total += 1
        self.per[key] = self.per.get(key, 0) + 1

    def _give(self, key: str) -> None:
        self.total -= 1
        self.per[key] -= 1
        if not self.per[key]:
            del self.per[key]
        for w in list(self._waiters):
            if w[3].done():
                self._waiters.remove(w)
            elif self._fits(w[0], w[1], w[2]):
                self._waiters.remove(w)
                self._take(w[0])
                w[3].set_result(None)

    @asynccontextmanager
    async def slot(self, key: str, total: Callable[[], int], per_key: Callable[[], int]):
        if self.stopping:
            raise SlotRefused()
        if self._fits(key, total, per_key) and not any(w[0] == key for w in self._waiters):
            self._take(key)
        else:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((key, total, per_key, fut))
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._give(key)  # granted just as we were cancelled
                raise
        try:
            yield
        finally:
            self._give(key)
