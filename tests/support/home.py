"""A real coremail home for end-to-end tests: every listener on its own free
loopback port, commands run through the installed `coremail`/`userutil`."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import sys
from dataclasses import dataclass
from pathlib import Path

from coremail.services.home import init_home
from coremail.services.settings import set_value
from tests.support.testdb import home_database

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-pass-1"
LISTENERS = ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "http", "https")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Home:
    path: Path
    ports: dict[str, int]

    def run(self, tool: str, *args: str, check: bool = False, timeout: float = 120,
            env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / tool), "--home", str(self.path), *args],
                              capture_output=True, text=True, timeout=timeout, check=check,
                              env={**os.environ, **(env or {})})

    def coremail(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("coremail", *args, **kw)

    def userutil(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("userutil", *args, **kw)

    def log(self, service: str, *, until: str | None = None, timeout: float = 5.0) -> str:
        """The service's log; with ``until``, once that text is in it (a
        service's log writer writes a few tens of milliseconds after the event)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = (self.path / "logs" / f"{service}.log").read_text()
            except FileNotFoundError:
                text = ""
            if until is None or until in text or time.monotonic() > deadline:
                return text
            time.sleep(0.02)


def init_test_home(path: Path, domain: str = "example.test",
                   admin_password: str = ADMIN_PASSWORD) -> Path:
    """`coremail init` without root: config, TLS files, migrated store, admin;
    on PostgreSQL under COREMAIL_TEST_DATABASE (tests/support/testdb.py)."""
    init_home(path, domain, admin_password=admin_password, privileged=False,
              database=home_database())
    return path


def make_home(path: Path, domain: str = "example.test", workers: int = 2) -> Home:
    init_test_home(path, domain)
    ports = {name: free_port() for name in LISTENERS}
    set_value(path, "listen.address", '"127.0.0.1"')
    for name, port in ports.items():
        set_value(path, f"listen.{name}", str(port))
    for svc in ("smtp", "pop3", "imap"):
        set_value(path, f"workers.{svc}", str(workers))
    return Home(path, ports)
