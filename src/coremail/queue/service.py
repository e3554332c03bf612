"""The `deliveragent` service: no listening ports, one process that works the
outbound queue (coremail.queue.scheduler) until told to stop."""
from __future__ import annotations

import socket
import sys

from .scheduler import DeliverAgent


class DeliverAgentService:
    def __init__(self, ctx):
        self.ctx = ctx
        self.agent = DeliverAgent(ctx)

    def listeners(self) -> list:
        return []

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        # Database work runs in threads; a short GIL switch interval lets the
        # event loop read a remote 250 (and note it in the journal) sooner,
        # which narrows the window in which a crash causes a duplicate.
        # Process-wide by nature (the interpreter has one), and this process
        # runs only the deliveragent.
        sys.setswitchinterval(0.0005)
        await self.agent.start()

    async def stop(self, timeout: float) -> None:
        await self.agent.stop(timeout)


def create(ctx) -> DeliverAgentService:
    return DeliverAgentService(ctx)
