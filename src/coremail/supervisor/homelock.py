"""The lock that says "a set of processes serves this home": DIR/run/coremail.lock.

The supervisor takes it exclusively for its lifetime and its runners and their
workers inherit the same open file, so the lock stays held while any process
of the set lives, even after a kill -9 of the supervisor (a stale pid file
cannot lie about it). `coremail start` uses it to find and stop what is left
of an old set before starting a new one, so two sets never share a port.
"""
from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

LOCK_NAME = "coremail.lock"
SUPERVISOR_MODULE = "coremail.supervisor.daemon"


class Busy(Exception):
    """Another set of processes holds the home's lock."""


def lock_path(home: Path) -> Path:
    return Path(home) / "run" / LOCK_NAME


def hold(home: Path) -> int:
    """Take the home's lock for this process's lifetime; the fd is inheritable
    so that runners (pass_fds) and their forked workers keep it held."""
    path = lock_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Busy(f"{path} is held by another set of coremail processes") from None
    return fd


def is_held(home: Path) -> bool:
    path = lock_path(home)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing our own open file drops a lock we just took
    return False


def holders(home: Path) -> list[int]:
    """Pids of the processes that have the home's lock file open (the set)."""
    try:
        st = os.stat(lock_path(home))
    except FileNotFoundError:
        return []
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        fd_dir = f"/proc/{entry}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                if not os.readlink(f"{fd_dir}/{fd}").endswith(LOCK_NAME):
                    continue
                fst = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino):
                out.append(int(entry))
                break
    return sorted(out)


def is_supervisor(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return SUPERVISOR_MODULE.encode() in f.read()
    except OSError:
        return False


def stop_holders(home: Path, grace: float, also: list[int] = ()) -> list[int]:
    """SIGTERM every process of a leftover set (the graceful stop: sessions
    finish their transaction), SIGKILL what is still there after `grace`
    seconds; return once the lock is free and `also` gone, with the pids."""
    found = sorted(set(holders(home)) | set(also))
    for pid in found:
        _signal(pid, signal.SIGTERM)

    def left() -> list[int]:
        return sorted(set(holders(home)) | {p for p in also if alive(p)})

    for sig, wait in ((None, grace), (signal.SIGKILL, 10.0)):
        if sig is not None:
            for pid in left():
                _signal(pid, sig)
        deadline = time.monotonic() + wait
        while (is_held(home) or left()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not is_held(home) and not left():
            return found
    raise Busy(f"processes {', '.join(map(str, left()))} of this home did not exit")


def alive(pid: int) -> bool:
    """Running (a zombie has exited: it holds no file and serves no port)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
