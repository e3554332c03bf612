"""The `deliveragent` service: no listening ports, one process that works the
outbound queue (coremail.queue.scheduler) until told to stop."""
from __future__ import annotations

import socket

from .scheduler import DeliverAgent


class DeliverAgentService:
    def __init__(self, ctx):
        self.ctx = ctx
        self.agent = DeliverAgent(ctx)

    def listeners(self) -> list:
        return []

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        await self.agent.start()

    async def stop(self, timeout: float) -> None:
        await self.agent.stop(timeout)


def create(ctx) -> DeliverAgentService:
    return DeliverAgentService(ctx)
