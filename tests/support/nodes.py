"""Several coremail nodes on one machine for the several-node tests and
benchmarks: one PostgreSQL database and one blob directory, each node its
own home with `coremail init --database` (the first) or `init --join` (the
others), its own hostname and its own loopback ports, started with
`coremail start` as an operator would."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from coremail.services.settings import set_value
from coremail.supervisor.homelock import alive
from tests.support.home import LISTENERS, Home, free_port

ADMIN_PASSWORD = "admin-pass-1"


class Node(Home):
    """A Home that was made by `coremail init` on the command line."""

    hostname: str = ""

    def configure(self, settings: dict[str, str]) -> None:
        """Loopback ports and `settings` (TOML values), as `config set` writes them."""
        set_value(self.path, "listen.address", '"127.0.0.1"')
        for name, port in self.ports.items():
            set_value(self.path, f"listen.{name}", str(port))
        for key, value in settings.items():
            set_value(self.path, key, value)

    def start(self) -> "Node":
        r = self.coremail("start", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        return self

    def pids(self) -> list[int]:
        """The supervisor, every service process and their workers."""
        top = []
        for line in self.coremail("status").stdout.splitlines():
            fields = line.split("\t")
            if len(fields) > 2 and fields[2].isdigit():
                top.append(int(fields[2]))
        out = list(top)
        for pid in top:
            out += _descendants(pid)
        return out

    def kill_9(self) -> list[int]:
        """kill -9 of every process of the node at once (a machine lost)."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        return pids

    def shutdown(self) -> None:
        self.coremail("shutdown", timeout=120)


def _descendants(pid: int) -> list[int]:
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return out
    for k in kids:
        out += [k, *_descendants(k)]
    return out


def first_node(path: Path, database: str, blobs: Path, hostname: str,
               domain: str = "example.test") -> Node:
    node = Node(Path(path), {name: free_port() for name in LISTENERS})
    r = node.coremail("init", "--domain", domain, "--database", database, "--blobs", str(blobs),
                      "--hostname", hostname, "--admin-password", ADMIN_PASSWORD,
                      "--unprivileged-ports")
    assert r.returncode == 0, r.stdout + r.stderr
    node.hostname = hostname
    return node


def join_node(path: Path, database: str, blobs: Path, hostname: str) -> Node:
    node = Node(Path(path), {name: free_port() for name in LISTENERS})
    r = node.coremail("init", "--join", database, "--blobs", str(blobs), "--hostname", hostname,
                      "--unprivileged-ports")
    assert r.returncode == 0, r.stdout + r.stderr
    node.hostname = hostname
    return node
