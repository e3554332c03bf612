"""Client side of the supervisor's control socket, and starting the
supervisor as a daemon (used by `coremail start`)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from .daemon import SOCKET_NAME


class NotRunning(Exception):
    pass


def request(home: Path, req: dict, timeout: float = 180.0) -> dict:
    path = Path(home) / "run" / SOCKET_NAME
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        s.close()
        raise NotRunning("coremail is not running (no supervisor); `coremail start` starts it") from None
    with s:
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf) if buf else {"ok": False, "error": "no reply from the supervisor"}


def is_running(home: Path) -> bool:
    try:
        request(home, {"cmd": "status"}, timeout=5)
        return True
    except (NotRunning, OSError, ValueError):
        return False


def spawn_supervisor(home: Path, wait: float = 15.0) -> None:
    """Start the supervisor detached from this terminal and wait for its socket."""
    home = Path(home).resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    (home / "run").mkdir(parents=True, exist_ok=True)
    with open(home / "logs" / "supervisor.log", "ab") as logf:
        subprocess.Popen([sys.executable, "-m", "coremail.supervisor.daemon", "--home", str(home)],
                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                         start_new_session=True, close_fds=True, cwd="/",
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if is_running(home):
            return
        time.sleep(0.05)
    raise NotRunning(f"the supervisor did not start; see {home / 'logs' / 'supervisor.log'}")


def wait_gone(home: Path, timeout: float = 60.0) -> bool:
    pidfile = Path(home) / "run" / "supervisor.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pidfile.exists():
            return True
        time.sleep(0.05)
    return False
