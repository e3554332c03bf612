"""The asyncio.Protocol plumbing the mail-access sessions (POP3, IMAP) share:
the fields every session has, the peer address and its place in the service's
tracker, end-of-input and connection-loss flags, flow control both ways, and
the two futures a session's task parks on (`_wait` for input, `_drain` for the
transport to take more output).

Back-pressure: while the transport's output is over its high-water mark
(a client that does not read its replies) nothing more is read from the
client, and a subclass holds reading too while it has unconsumed input
(`_hold_reading("input")`, `_release_reading("input")`), so its buffers stay small
whatever the client sends.

A subclass keeps its own buffer (`data_received`), runs the conversation in
`_run(over_limit)` (over_limit: this address already has
limits.max_connections_per_ip sessions; refuse in the protocol's words) and
gives itself an `sid`.
"""
from __future__ import annotations

import asyncio
import time

from .listen import peer_address


class StreamSession(asyncio.Protocol):
    def __init__(self, service, listener: str, implicit_tls: bool) -> None:
        self.svc = service
        self.listener = listener
        self.loop = asyncio.get_running_loop()
        self.tls = implicit_tls
        self.transport: asyncio.Transport | None = None
        self.ip = "?"
        self.user = None
        self.task: asyncio.Task | None = None
        self.last = self.loop.time()
        self.started = time.monotonic()
        self._waiter: asyncio.Future | None = None
        self._drain_waiter: asyncio.Future | None = None
        self._eof = self._lost = self._write_paused = False
        self._held: set[str] = set()   # why reading is paused ("output", "input")

    # ------------------------------------------------------------ transport events
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.ip = peer_address(transport.get_extra_info("peername"))[0]
        tracker = self.svc.tracker
        tracker.add(self, self.ip)
        over = tracker.over_limit(self.ip, self.svc.settings.limits.max_connections_per_ip)
        self.task = self.loop.create_task(self._run(over))

    async def _run(self, over_limit: bool) -> None:
        raise NotImplementedError

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc) -> None:
        self._lost = True
        self._wake()
        self._wake_drain()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._hold_reading("output")

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release_reading("output")
        self._wake_drain()

    def _hold_reading(self, why: str) -> None:
        """Stop reading from the client (for `why`) until `_release_reading(why)`."""
        if not self._held and self.transport is not None and not self._lost:
            self.transport.pause_reading()
        self._held.add(why)

    def _release_reading(self, why: str) -> None:
        if why not in self._held:
            return
        self._held.discard(why)
        if not self._held and self.transport is not None and not self._lost:
            self.transport.resume_reading()

    # ------------------------------------------------------------ waiting
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _wake_drain(self) -> None:
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _wait(self) -> None:
        """Park until data, end of input, connection loss or a `_wake()`."""
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _drain(self) -> None:
        """Wait until the transport takes output again; raise if the client went away."""
        while self._write_paused and not self._lost:
            self._drain_waiter = self.loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self._lost:
            raise ConnectionResetError("client went away")
