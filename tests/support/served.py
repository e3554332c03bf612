"""coremail as an operator runs it, for benchmarks against the peers: `coremail
init` into a temp home with the shipped defaults, every listener moved to a
free loopback port (`coremail config set`), users added with `userutil`, then
`coremail start` (the supervisor and every service). `stop()` is `coremail
shutdown` and checks that no process of ours is left.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coremail.supervisor.homelock import alive
from tests.support.home import LISTENERS, free_port
from tests.support.testdb import home_database

BIN = Path(sys.executable).parent


class ServedHome:
    def __init__(self, users: dict[str, str], domain: str = "example.test",
                 root: Path | None = None, settings: dict[str, str] | None = None,
                 database: str = ""):
        self.path = Path(root or tempfile.mkdtemp(prefix="coremail-served-"))
        self.users = dict(users)
        self.domain = domain
        self.ports = {name: free_port() for name in LISTENERS}
        self.settings = dict(settings or {})
        self.database = database    # a PostgreSQL URL: `init --database` (one node of many)
        self._pids: list[int] = []

    def run(self, tool: str, *args: str, timeout: float = 120) -> str:
        out = subprocess.run([str(BIN / tool), "--home", str(self.path), *args],
                             capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
        if out.returncode:
            raise RuntimeError(f"{tool} {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
        return out.stdout

    @property
    def imap_port(self) -> int:
        return self.ports["imap"]

    def start(self) -> "ServedHome":
        return self.prepare().launch()

    def prepare(self) -> "ServedHome":
        """Everything but `coremail start`: init, settings, users."""
        self.database = self.database or home_database()  # COREMAIL_TEST_DATABASE
        extra = ("--database", self.database) if self.database else ()
        self.run("coremail", "init", "--domain", self.domain, "--admin-password", "served-admin-1",
                 *extra)
        self.run("coremail", "config", "set", "listen.address", "127.0.0.1")
        for name, port in self.ports.items():
            self.run("coremail", "config", "set", f"listen.{name}", str(port))
        for key, value in self.settings.items():
            self.run("coremail", "config", "set", key, value)
        for address, password in self.users.items():
            self.run("userutil", "add", address, "--password", password)
        return self

    def launch(self) -> "ServedHome":
        self.run("coremail", "start", timeout=180)
        self._pids = self.pids()
        return self

    def pids(self) -> list[int]:
        """The supervisor's pid and every service's, from `coremail status`."""
        pids = []
        for line in self.run("coremail", "status").splitlines():
            fields = line.split("\t")
            if len(fields) > 2 and fields[2].isdigit():
                pids.append(int(fields[2]))
        return pids

    def service_pids(self, service: str) -> list[int]:
        """A service's process and its worker children."""
        top = [int(ln.split("\t")[2]) for ln in self.run("coremail", "status").splitlines()
               if ln.startswith(service + "\t") and ln.split("\t")[2].isdigit()]
        kids = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) in top:
                        kids.append(int(p.name))
                except (OSError, ValueError, IndexError):
                    pass
        return top + kids

    def log(self, service: str) -> str:
        try:
            return (self.path / "logs" / f"{service}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, remove: bool = True) -> list[int]:
        """`coremail shutdown`; returns the pids still alive afterwards (should be none)."""
        if self._pids:
            subprocess.run([str(BIN / "coremail"), "--home", str(self.path), "shutdown"],
                           capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        left = self._pids
        while left and time.monotonic() < deadline:
            left = [p for p in left if alive(p)]
            time.sleep(0.1)
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)
        return left
