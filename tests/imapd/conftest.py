"""A real imap service in-process on free loopback ports, its event loop in a
background thread so blocking clients (imaplib, mbsync, curl) can talk to it
from the test itself. One home per module; each test gets fresh users."""
from __future__ import annotations

import asyncio
import imaplib
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coremail.app import ServiceContext
from coremail.config import ConfigWatcher, build_settings
from coremail.imapd.service import create
from coremail.mail.mime import summarize
from coremail.obs.log import Log
from coremail.proto.listen import bind_socket
from coremail.services.accounts import Accounts
from coremail.services.home import init_home
from coremail.store import open_store
from coremail.store.interfaces import Delivery

PASSWORD = "s3cret-pass"


class LockedStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def write(self, s):
        with self.lock:
            return super().write(s)


@dataclass
class ImapServer:
    home: Path
    ctx: ServiceContext
    service: object
    loop: asyncio.AbstractEventLoop
    ports: dict[str, int]
    logbuf: io.StringIO
    users: dict[str, object] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.ports["imap"]

    @property
    def store(self):
        return self.ctx.store

    def add_user(self, address: str, password: str = PASSWORD, **kw):
        user = Accounts(self.store, "example.test").add_user(address, password, **kw)
        self.users[address] = user
        return user

    def deliver(self, address: str, data: bytes, folder: str = "INBOX", flags=()) -> int:
        user = self.store.get_user(address)
        blob = self.store.blobs.write(data)
        [res] = self.store.deliver([Delivery(user.id, blob, folder=folder, flags=frozenset(flags),
                                             meta=summarize(data))])
        return res.uid

    def folder(self, address: str, name: str = "INBOX"):
        user = self.store.get_user(address)
        return self.store.get_folder(user.id, name)

    def messages(self, address: str, name: str = "INBOX"):
        return self.store.list_messages(self.folder(address, name).id)

    def client(self, address: str, password: str = PASSWORD) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        c.login(address, password)
        return c

    def settings(self, **sections) -> None:
        cur = self.ctx.config.current.model_dump(mode="json")
        for sec, values in sections.items():
            cur[sec].update(values)
        self.ctx.config.current = build_settings(cur)


@pytest.fixture(scope="module")
def _home(tmp_path_factory):
    home = tmp_path_factory.mktemp("imaphome")
    init_home(home, "example.test", privileged=False, admin_password="admin-pw-1")
    return home


@pytest.fixture
def imap(_home):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    settings = build_settings({"listen": {"address": "127.0.0.1"}})
    config = ConfigWatcher(_home, settings)
    logbuf = LockedStream()
    ctx = ServiceContext(_home, config, open_store(_home, settings), Log("imap", stream=logbuf))
    service = create(ctx)
    sockets = {"imap": bind_socket("127.0.0.1", 0, "imap"), "imaps": bind_socket("127.0.0.1", 0, "imaps")}
    ports = {n: s.getsockname()[1] for n, s in sockets.items()}
    asyncio.run_coroutine_threadsafe(service.start(sockets), loop).result(10)
    srv = ImapServer(_home, ctx, service, loop, ports, logbuf)
    yield srv
    try:
        asyncio.run_coroutine_threadsafe(service.stop(2), loop).result(15)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        for p in (_home / "run" / "authfail").glob("*"):
            p.unlink()
        for u in srv.users:
            try:
                Accounts(ctx.store, "example.test").delete_user(u)
            except Exception:
                pass
        ctx.store.close()


@pytest.fixture
def alice(imap):
    imap.add_user("alice@example.test")
    return "alice@example.test"


def wait_for(pred, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.02)
    return pred()
