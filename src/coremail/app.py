"""Builds what a service process needs (config -> store -> service) and names
the services the supervisor can run.

A service is an object with `listeners()`, `async start(sockets)` and
`async stop(timeout)`; `coremail.supervisor.runner` binds its sockets, forks
its worker processes and calls these. Adding a service = one entry in
`SERVICES` pointing at its factory.
"""
from __future__ import annotations

import asyncio
import importlib
import secrets
import socket
import sys
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .config import ConfigWatcher, Settings
from .ingest import Ingest
from .obs.log import Log, LogWriter
from .obs.trace import Tracer
from .proto.listen import ListenerSpec
from .proto.tls import server_context
from .store import Store, open_store

# service name -> "module:factory"; the factory takes a ServiceContext.
SERVICES: dict[str, str] = {
    "smtp": "coremail.smtpd.service:create",
    "pop3": "coremail.pop3d.service:create",
    "imap": "coremail.imapd.service:create",
    "deliveragent": "coremail.queue.service:create",
    "web": "coremail.web.service:create",
}


def available_services() -> list[str]:
    """Services whose code is present, in start order."""
    out = []
    for name, target in SERVICES.items():
        module = target.partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out


@dataclass
class ServiceContext:
    home: Path
    config: ConfigWatcher
    store: Store
    log: Log
    worker: int = 0
    # Shared by a service's workers (made by their runner), never on disk:
    # keys the login cache's files (services.login.LoginCache).
    login_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _tls: ssl.SSLContext | None = field(default=None, repr=False)
    _ingest: Ingest | None = field(default=None, repr=False)
    _tracer: Tracer | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The current settings: read at each decision, so changes apply live."""
        return self.config.current

    @property
    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = server_context(self.home / "conf" / "tls")
        return self._tls

    @property
    def ingest(self) -> Ingest:
        """The one way in for messages, made on first use (in the worker, after
        the fork: it owns the group commit's threads)."""
        if self._ingest is None:
            self._ingest = Ingest(self.store, self.log, lambda: self.settings)
        return self._ingest

    @property
    def tracer(self) -> Tracer:
        """The message trace's writer for this process (obs.trace): events
        go to the store in one transaction per flush, off the hot path."""
        if self._tracer is None:
            log = self.log
            self._tracer = Tracer(
                self.store.trace_add, service=log.service,
                enabled=lambda: self.settings.trace.enabled,
                on_error=lambda e, n: log.warning("trace.lost", events=n, error=repr(e)))
        return self._tracer

    def close_tracer(self) -> None:
        """Write the trace events still queued (before the store closes)."""
        if self._tracer is not None:
            self._tracer.close()

    async def close_ingest(self) -> None:
        """Finish the commits in flight (a graceful stop)."""
        if self._ingest is not None:
            await self._ingest.close()

    async def watch_config(self, interval: float = 1.0) -> None:
        """Reload coremail.toml when it changes (runs for the process lifetime)."""
        while True:
            await asyncio.sleep(interval)
            if self.config.poll():
                self.log.info("config.reloaded")
            elif self.config.last_error:
                self.log.error("config.rejected", reason=self.config.last_error)
                self.config.last_error = None


class Service(Protocol):
    def listeners(self) -> list[ListenerSpec]: ...
    async def start(self, sockets: dict[str, socket.socket]) -> None: ...
    async def stop(self, timeout: float) -> None: ...


def build_context(home: Path, service: str, worker: int = 0,
                  login_key: bytes | None = None) -> ServiceContext:
    config = ConfigWatcher(home)
    log = Log(service, level=config.current.log.level, writer=LogWriter(sys.stderr),
              worker=worker)
    store = open_store(home, config.current)
    ctx = ServiceContext(Path(home), config, store, log, worker)
    if login_key is not None:
        ctx.login_key = login_key
    return ctx


def create_service(name: str, ctx: ServiceContext) -> Service:
    module, _, func = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), func)(ctx)
