"""A real SMTP service in this process, on free loopback ports, driven by
smtplib, raw sockets and swaks. The service runs its own event loop on a
thread, so tests are plain synchronous code like any mail client."""
from __future__ import annotations

import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest

from coremail.config import CONFIG_RELATIVE, build_settings, read_toml
from tests.support.home import init_test_home
from tests.support.inproc import DOMAIN, InProcService

PASSWORD = "secret-pw-1"
TLS = ssl._create_unverified_context()


class Server(InProcService):
    """Initialises `home` itself; settings follow its coremail.toml, and
    `set`/`reset_settings` change them live from that file's contents."""

    name = "smtp"
    listener_names = ("smtp", "submission", "smtps")
    log_level = "debug"
    password = PASSWORD

    def __init__(self, home: Path, **options):
        init_test_home(home, DOMAIN)
        self.data = read_toml(home / CONFIG_RELATIVE)
        super().__init__(home, **options)

    @property
    def logs(self):
        return self.logbuf

    def set(self, **sections: dict) -> None:
        """Change settings live, the way an edit of coremail.toml would."""
        data = {k: dict(v) for k, v in self.data.items()}
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        self.ctx.config.current = build_settings(data)

    def reset_settings(self) -> None:
        self.ctx.config.current = build_settings(self.data)

    # -- helpers
    def add_user(self, local: str, quota: int | str = 0, password: str = PASSWORD):
        return super().add_user(f"{local}@{DOMAIN}", password, quota=quota)

    def inbox(self, address: str) -> list[bytes]:
        return [self.store.blobs.read(m.blob_id) for m in self.messages(address)]

    def log_events(self, event: str) -> list[dict]:
        return self.log_lines(event)

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
