"""A real pop3 service in-process on free loopback ports, its event loop in a
background thread so blocking clients (poplib, fetchmail, curl) can talk to it
from the test itself."""
from __future__ import annotations

import asyncio
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coremail.app import ServiceContext
from coremail.config import ConfigWatcher, build_settings
from coremail.obs.log import Log, parse_line
from coremail.proto.listen import bind_socket
from coremail.services.accounts import Accounts
from coremail.services.home import init_home
from coremail.store import open_store
from coremail.store.interfaces import Delivery
from coremail.pop3d.service import create

PASSWORD = "s3cret pass"  # a space inside: PASS takes the rest of the line


@dataclass
class Pop3Server:
    home: Path
    ctx: ServiceContext
    service: object
    loop: asyncio.AbstractEventLoop
    ports: dict[str, int]
    logbuf: io.StringIO
    users: dict[str, object] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.ports["pop3"]

    @property
    def store(self):
        return self.ctx.store

    def add_user(self, address: str, password: str = PASSWORD, **kw):
        user = Accounts(self.store, "example.test").add_user(address, password, **kw)
        self.users[address] = user
        return user

    def deliver(self, address: str, data: bytes) -> int:
        user = self.store.get_user(address)
        blob = self.store.blobs.write(data)
        [res] = self.store.deliver([Delivery(user.id, blob)])
        return res.message_id

    def inbox(self, address: str):
        user = self.store.get_user(address)
        folder = self.store.get_folder(user.id, "INBOX")
        return self.store.list_messages(folder.id)

    def settings(self, **sections) -> None:
        """Change settings live, as `coremail config set` would."""
        cur = self.ctx.config.current.model_dump(mode="json")
        for sec, values in sections.items():
            cur[sec].update(values)
        self.ctx.config.current = build_settings(cur)

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def log_lines(self, event: str = "pop3.session") -> list[dict]:
        out = [parse_line(ln) for ln in self.logbuf.getvalue().splitlines()]
        return [d for d in out if d.get("event") == event]


@pytest.fixture(scope="module")
def _home(tmp_path_factory):
    """One initialised home per test module (init costs an argon2 hash and a migration)."""
    home = tmp_path_factory.mktemp("pop3home")
    init_home(home, "example.test", privileged=False, admin_password="admin-pw-1")
    return home


@pytest.fixture
def pop3(_home, request):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    settings = build_settings({"listen": {"address": "127.0.0.1"}})
    config = ConfigWatcher(_home, settings)
    logbuf = io.StringIO()
    ctx = ServiceContext(_home, config, open_store(_home, settings), Log("pop3", stream=logbuf))
    service = create(ctx)
    sockets = {"pop3": bind_socket("127.0.0.1", 0, "pop3"),
               "pop3s": bind_socket("127.0.0.1", 0, "pop3s")}
    ports = {n: s.getsockname()[1] for n, s in sockets.items()}

    async def start():
        await service.start(sockets)
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    srv = Pop3Server(_home, ctx, service, loop, ports, logbuf)
    yield srv
    try:
        asyncio.run_coroutine_threadsafe(service.stop(2), loop).result(15)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        # each test gets fresh users and no failed-login history
        for p in (_home / "run" / "authfail").glob("*"):
            p.unlink()
        for u in srv.users:
            try:
                Accounts(ctx.store, "example.test").delete_user(u)
            except Exception:
                pass
        ctx.store.close()
