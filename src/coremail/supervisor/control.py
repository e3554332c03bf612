"""Client side of the supervisor's control socket, and starting the
supervisor as a daemon (used by `coremail start`): never beside a live set of
this home's processes, and only after what is left of a dead one has stopped."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import homelock
from .daemon import PID_NAME, SOCKET_NAME

# A leftover set gets this long for its graceful stop (the runner's own stop
# takes at most its STOP_TIMEOUT + 5 s), then SIGKILL.
LEFTOVER_GRACE = 30.0


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


def send_only(home: Path, req: dict) -> None:
    """Hand the supervisor a request without waiting for its reply: how a
    service asks for its own restart (waiting would hold up its own stop)."""
    path = Path(home) / "run" / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NotRunning("coremail is not running (no supervisor); `coremail start` starts it") from None
        s.sendall((json.dumps(req) + "\n").encode())


def running_pid(home: Path) -> int | None:
    """The pid of the supervisor answering on the socket, else None."""
    try:
        reply = request(home, {"cmd": "status"}, timeout=5)
    except (NotRunning, OSError, ValueError):
        return None
    return reply.get("pid") if reply.get("ok") else None


def is_running(home: Path) -> bool:
    return running_pid(home) is not None


def _wait_running(home: Path, wait: float) -> int | None:
    deadline = time.monotonic() + wait
    while True:
        pid = running_pid(home)
        if pid is not None or time.monotonic() >= deadline:
            return pid
        time.sleep(0.1)


def _pidfile(home: Path) -> int | None:
    try:
        return int((Path(home) / "run" / PID_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


def _recorded(home: Path) -> set[int]:
    """Live processes named by the pid files that run coremail's supervisor
    code for this home (a stale pid file may name an unrelated process)."""
    out = set()
    for pidfile in (Path(home) / "run").glob("*.pid"):
        try:
            pid = int(pidfile.read_text().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if any(a.startswith(b"coremail.supervisor.") for a in argv) \
                and str(Path(home)).encode() in argv:
            out.add(pid)
    return out


def leftovers(home: Path) -> list[int]:
    """Processes still serving this home: holders of its lock, and those its
    pid files name."""
    return sorted(set(homelock.holders(home)) | _recorded(home))


def stop_leftovers(home: Path, grace: float = LEFTOVER_GRACE) -> list[int]:
    """Stop what is left of a set whose supervisor is gone: SIGTERM (sessions
    finish their transaction), SIGKILL after `grace`. Returns their pids."""
    home = Path(home)
    found = leftovers(home)
    if not found:
        return []
    found = homelock.stop_holders(home, grace, also=found)
    for pidfile in (home / "run").glob("*.pid"):
        pidfile.unlink(missing_ok=True)
    return found


def ensure_supervisor(home: Path) -> tuple[int, list[int]]:
    """A supervisor for this home that answers: the live one, or a new one once
    no process of an earlier set is left. Returns (its pid, pids stopped)."""
    home = Path(home).resolve()
    pid = running_pid(home)
    if pid is not None:
        return pid, []
    found = leftovers(home)
    sup = [p for p in found if homelock.is_supervisor(p)]
    if sup:
        # Never a second one. It writes its pid file once its socket is up: without
        # one it is being started by a concurrent `start`, so give it time to answer.
        pid = None if _pidfile(home) in sup else _wait_running(home, 15.0)
        if pid is not None:
            return pid, []
        raise NotRunning(f"a supervisor of this home (pid {sup[0]}) is running but does not "
                         "answer on its control socket; stop it and start again")
    stopped = stop_leftovers(home) if found else []
    spawn_supervisor(home)
    return running_pid(home) or 0, stopped


def spawn_supervisor(home: Path, wait: float = 15.0) -> None:
    """Start the supervisor detached from this terminal and wait for its socket."""
    home = Path(home).resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    (home / "run").mkdir(parents=True, exist_ok=True)
    with open(home / "logs" / "supervisor.log", "ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coremail.supervisor.daemon", "--home", str(home)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
            start_new_session=True, close_fds=True, cwd="/",
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if is_running(home):
            return
        if proc.poll() is not None and not homelock.is_held(home):
            break  # it exited and nobody else took the home
        time.sleep(0.05)
    raise NotRunning(f"the supervisor did not start; see {home / 'logs' / 'supervisor.log'}")


def wait_gone(home: Path, timeout: float = 60.0) -> bool:
    """Until the supervisor and every process of its set have exited."""
    pidfile = Path(home) / "run" / PID_NAME
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pidfile.exists() and not homelock.is_held(home):
            return True
        time.sleep(0.05)
    return False
