"""The `web` service: uvicorn serving the webmail on listen.http, one
instance per worker process (they share the port), under the supervisor
like every other service."""
from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn

from ..pipeline.rules import Pipeline
from ..proto.listen import ListenerSpec
from ..services.login import Authenticator, FailureThrottle, LoginCache
from ..services.mailboxes import Mailboxes
from ..services.send import Sender
from .app import create_app
from .site import WebContext


class WebService:
    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task | None = None
        self.pipeline: Pipeline | None = None

    def listeners(self) -> list[ListenerSpec]:
        return [ListenerSpec("http", self.ctx.settings.listen.http)]

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        ctx = self.ctx
        run = ctx.home / "run"
        auth = Authenticator(ctx.store, FailureThrottle(run / "authfail"),
                             LoginCache(shared_dir=run / "logincache-web", key=ctx.login_key))
        self.pipeline = Pipeline(ctx.store, lambda: ctx.settings, log=ctx.log)
        mailboxes = Mailboxes(ctx.store, ctx.ingest,
                              lambda: int(ctx.settings.limits.max_message_size))
        web = WebContext(ctx, auth=auth, sender=Sender(self.pipeline, ctx.ingest),
                         mailboxes=mailboxes)
        config = uvicorn.Config(create_app(web), log_level="warning", access_log=False,
                                lifespan="off", server_header=False, proxy_headers=False,
                                timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        # The runner owns SIGTERM (its graceful stop calls stop() below), so
        # uvicorn must not install handlers of its own.
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self.task = asyncio.get_running_loop().create_task(
            self.server.serve(sockets=list(sockets.values())))
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()
        ctx.log.info("web.started", listeners=",".join(sorted(sockets)))

    async def stop(self, timeout: float) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            try:
                await asyncio.wait_for(self.task, timeout)
            except asyncio.TimeoutError:
                self.server.force_exit = True
        if self.pipeline is not None:
            self.pipeline.close()
        await self.ctx.close_ingest()
        self.ctx.log.info("web.stopped")


def create(ctx: Any) -> WebService:
    return WebService(ctx)
