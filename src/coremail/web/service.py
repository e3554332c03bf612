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
from ..proto.tls import CERT_NAME, KEY_NAME
from ..services.login import Authenticator, LoginCache, throttle_for
from ..services.mailboxes import Mailboxes
from ..services.send import Sender
from ..services.spamlearn import Learner
from .app import create_app
from .site import WebContext


class WebService:
    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.servers: list[uvicorn.Server] = []
        self.tasks: list[asyncio.Task] = []
        self.pipeline: Pipeline | None = None
        self.learner: Learner | None = None

    def listeners(self) -> list[ListenerSpec]:
        listen = self.ctx.settings.listen
        return [ListenerSpec("http", listen.http), ListenerSpec("https", listen.https, tls=True)]

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        ctx = self.ctx
        run = ctx.home / "run"
        auth = Authenticator(ctx.store, throttle_for(ctx.store, run),
                             LoginCache(shared_dir=run / "logincache-web", key=ctx.login_key))
        self.pipeline = Pipeline(ctx.store, lambda: ctx.settings, log=ctx.log)
        self.learner = Learner(ctx.store, ctx.log)
        # The learner trains the intelligent score from moves in and out of Junk.
        mailboxes = Mailboxes(ctx.store, ctx.ingest,
                              lambda: int(ctx.settings.limits.max_message_size),
                              self.learner)
        web = WebContext(ctx, auth=auth, sender=Sender(self.pipeline, ctx.ingest, ctx.tracer),
                         mailboxes=mailboxes)
        app = create_app(web)
        tls = ctx.home / "conf" / "tls"
        groups = [([s for n, s in sockets.items() if n != "https"], {}),
                  ([s for n, s in sockets.items() if n == "https"],
                   {"ssl_certfile": str(tls / CERT_NAME), "ssl_keyfile": str(tls / KEY_NAME)})]
        for socks, ssl in groups:
            if not socks:
                continue
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                    server_header=False, proxy_headers=False,
                                    timeout_keep_alive=30, **ssl)
            server = uvicorn.Server(config)
            # The runner owns SIGTERM (its graceful stop calls stop() below), so
            # uvicorn must not install handlers of its own.
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
            task = asyncio.get_running_loop().create_task(server.serve(sockets=socks))
            self.servers.append(server)
            self.tasks.append(task)
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            if task.done():
                task.result()
        ctx.log.info("web.started", listeners=",".join(sorted(sockets)))

    async def stop(self, timeout: float) -> None:
        for server in self.servers:
            server.should_exit = True
        for server, task in zip(self.servers, self.tasks):
            try:
                await asyncio.wait_for(task, timeout)
            except asyncio.TimeoutError:
                server.force_exit = True
        if self.pipeline is not None:
            self.pipeline.close()
        if self.learner is not None:   # what users asked to learn is learnt before we go
            await asyncio.to_thread(self.learner.wait_idle, min(timeout, 10.0))
        await self.ctx.close_ingest()
        self.ctx.log.info("web.stopped")


def create(ctx: Any) -> WebService:
    return WebService(ctx)
