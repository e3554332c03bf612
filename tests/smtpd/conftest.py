"""A real SMTP service in this process, on free loopback ports, driven by
smtplib, raw sockets and swaks. The service runs its own event loop on a
thread, so tests are plain synchronous code like any mail client."""
from __future__ import annotations

import asyncio
import io
import smtplib
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from coremail.app import ServiceContext
from coremail.config import CONFIG_RELATIVE, ConfigWatcher, build_settings, read_toml
from coremail.obs.log import Log, parse_line
from coremail.proto.listen import bind_socket
from coremail.services.accounts import Accounts
from coremail.services.home import init_home
from coremail.smtpd.service import create
from coremail.store import open_store

DOMAIN = "example.test"
PASSWORD = "secret-pw-1"
TLS = ssl._create_unverified_context()


class LockedStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def write(self, s):
        with self.lock:
            return super().write(s)


class Server:
    def __init__(self, home: Path):
        init_home(home, DOMAIN, privileged=False, admin_password="admin-pw-1")
        self.home = home
        self.data = read_toml(home / CONFIG_RELATIVE)
        self.logs = LockedStream()
        config = ConfigWatcher(home)
        self.store = open_store(home, config.current)
        self.ctx = ServiceContext(home, config, self.store, Log("smtp", self.logs, "debug"))
        self.accounts = Accounts(self.store, DOMAIN, 0)
        self.service = create(self.ctx)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        socks = {n: bind_socket("127.0.0.1", 0, n) for n in ("smtp", "submission", "smtps")}
        self.ports = {n: s.getsockname()[1] for n, s in socks.items()}
        self.call(self.service.start(socks))

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set(self, **sections: dict) -> None:
        """Change settings live, the way an edit of coremail.toml would."""
        data = {k: dict(v) for k, v in self.data.items()}
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        self.ctx.config.current = build_settings(data)

    def reset_settings(self) -> None:
        self.ctx.config.current = build_settings(self.data)

    def stop(self, timeout: float = 5) -> None:
        self.call(self.service.stop(timeout))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.store.close()

    # -- helpers
    def add_user(self, local: str, quota: int | str = 0, password: str = PASSWORD):
        return self.accounts.add_user(f"{local}@{DOMAIN}", password, quota=quota)

    def inbox(self, address: str) -> list[bytes]:
        user = self.store.get_user(address)
        folder = self.store.get_folder(user.id, "INBOX")
        return [self.store.blobs.read(m.blob_id) for m in self.store.list_messages(folder.id)]

    def log_events(self, event: str) -> list[dict]:
        with self.logs.lock:
            text = self.logs.getvalue()
        return [d for d in map(parse_line, text.splitlines()) if d.get("event") == event]

    def smtp(self, listener: str = "smtp", *, tls: bool = False, login: str | None = None,
             password: str = PASSWORD) -> smtplib.SMTP:
        if listener == "smtps":
            c = smtplib.SMTP_SSL("127.0.0.1", self.ports["smtps"], context=TLS, timeout=10)
        else:
            c = smtplib.SMTP("127.0.0.1", self.ports[listener], timeout=10)
        c.ehlo("client.test")
        if tls and listener != "smtps":
            c.starttls(context=TLS)
            c.ehlo("client.test")
        if login:
            c.login(login, password)
        return c

    def raw(self, listener: str = "smtp") -> "Raw":
        return Raw(self.ports[listener])


class Raw:
    """A bare socket for what smtplib will not send (pipelining, garbage, BDAT)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self) -> str:
        """One whole (possibly multi-line) reply as text."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return "\n".join(x.decode() for x in lines)

    def cmd(self, text: str) -> str:
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout: float = 5) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("smtphome"))
    yield srv
    srv.stop()


@pytest.fixture
def srv(server):
    """The module's server with its settings put back after each test."""
    yield server
    server.reset_settings()


def message(subject: str = "hello", body: str = "Hi there.\r\n", sender: str = "a@remote.test",
            to: str = f"bob@{DOMAIN}") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}@remote.test>\r\n\r\n{body}").encode()
