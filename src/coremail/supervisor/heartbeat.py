"""The node's heartbeat: with a shared store (PostgreSQL), the supervisor
writes its hostname, the time and its services' states to the `nodes` table
every few seconds, so `coremail status --all` and the webadmin on any node
show every node; a node whose beat is older than STALE_AFTER is shown as
not reporting (stopped, or unreachable: its own services may still run).
A database that is away costs a logged line, never the supervisor."""
from __future__ import annotations

import asyncio
import time
from typing import Callable

from ..config import load_settings
from ..obs.log import Log
from ..store import open_store

INTERVAL = 5.0
STALE_AFTER = 3 * INTERVAL


class Heartbeat:
    def __init__(self, home, log: Log, services: Callable[[], list[dict]]):
        self.home = home
        self.log = log
        self.services = services
        self.started = time.time()
        self.store = None
        self.hostname = ""
        self._changed = asyncio.Event()

    def poke(self) -> None:
        """A service started or stopped: beat now rather than at the next interval."""
        self._changed.set()

    def open(self) -> bool:
        """Open the store if it is shared; False (no heartbeat) otherwise."""
        try:
            settings = load_settings(self.home)
            if not settings.storage.database.startswith("postgresql"):
                return False
            self.hostname = settings.server.hostname
            self.store = open_store(self.home, settings)
        except Exception as e:  # noqa: BLE001
            self.log.error("node.heartbeat_unavailable", error=repr(e))
            return False
        return True

    def beat(self, services: list[dict] | None = None) -> None:
        try:
            self.store.node_beat(self.hostname, self.started,
                                 self.services() if services is None else services)
        except Exception as e:  # noqa: BLE001
            self.log.warning("node.heartbeat_failed", error=repr(e))

    async def run(self) -> None:
        while True:
            self._changed.clear()
            await asyncio.to_thread(self.beat, self.services())
            try:
                await asyncio.wait_for(self._changed.wait(), INTERVAL)
            except asyncio.TimeoutError:
                pass

    def close(self) -> None:
        """The last beat: every service stopped."""
        if self.store is not None:
            self.beat([dict(s, state="stopped", pid=None) for s in self.services()])
            self.store.close()
