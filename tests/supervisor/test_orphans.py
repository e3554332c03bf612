"""A killed supervisor leaves no orphans: after kill -9 of the supervisor in
the middle of an SMTP load, `coremail start` runs one set (never a second one
beside what is left), every message that got a 250 is stored exactly once, and
`coremail shutdown` leaves no process and no open port of the home."""
from __future__ import annotations

import fcntl
import hashlib
import imaplib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from coremail.supervisor.homelock import alive
from tests.support.home import BIN, make_home

PASSWORD = "pw-123456"
SERVICE_PORTS = ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _home_procs(home) -> dict[int, list[str]]:
    """Every live process whose command line names this home (the supervisor,
    the runners and their forked workers, which share the runner's)."""
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            argv = _cmdline(int(p))
            if str(home.path) in argv and alive(int(p)):
                out[int(p)] = argv
    return out


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _role(argv: list[str]) -> str:
    for i, a in enumerate(argv):
        if a == "coremail.supervisor.daemon":
            return "supervisor"
        if a == "coremail.supervisor.runner":
            return argv[i + 1]
    return "?"


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def _supervisor_pid(home) -> int:
    out = home.coremail("status", check=True).stdout
    return int(out.splitlines()[0].split("\t")[2])


def _assert_nothing_left(home) -> None:
    deadline = time.time() + 5
    while _home_procs(home) and time.time() < deadline:
        time.sleep(0.1)
    left = _home_procs(home)
    assert not left, f"processes of the home left behind: {left}"
    still = [n for n in SERVICE_PORTS if _accepts(home.ports[n])]
    assert not still, f"ports still accepting connections: {still}"


@pytest.fixture
def home(tmp_path):
    h = make_home(tmp_path / "home")
    yield h
    h.coremail("shutdown", timeout=90)
    for pid in _home_procs(h):  # never leak a set into the next test
        os.kill(pid, signal.SIGKILL)


class Load:
    """SMTP senders on a few threads, each message a fresh connection and a
    unique subject; `accepted` holds the subjects that got a 250. Bounded:
    `per_thread` accepted messages each, or `seconds`, or `stop`."""

    def __init__(self, port: int, threads: int = 4, per_thread: int = 150,
                 seconds: float = 120):
        self.port, self.per_thread = port, per_thread
        self.deadline = time.monotonic() + seconds
        self.accepted: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self._mu = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True)
                        for t in range(threads)]

    def _run(self, t: int) -> None:
        n = mine = 0
        while mine < self.per_thread and not self.stop.is_set() \
                and time.monotonic() < self.deadline:
            n += 1  # every attempt a new subject: a retry must not look like a duplicate
            subject = f"load-{t}-{n}"
            # a word of its own in every line: 600 copies of one text would
            # (rightly) meet the fingerprint counter after 50
            word = "".join(chr(97 + b % 26) for b in hashlib.sha256(subject.encode()).digest())
            msg = (f"From: a@remote.test\r\nTo: kim@example.test\r\nSubject: {subject}\r\n"
                   f"Message-ID: <{subject}@remote.test>\r\n\r\n"
                   + f"body line {word}\r\n" * 40)
            got_250 = False
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                    s.sendmail("a@remote.test", ["kim@example.test"], msg.encode())
                    got_250 = True  # before QUIT, which may get a 421 from a stopping set
            except (OSError, smtplib.SMTPException):
                pass
            with self._mu:
                if got_250:
                    self.accepted.append(subject)
                else:
                    self.failed += 1
            if got_250:
                mine += 1
            else:
                time.sleep(0.2)  # the gap between two sets

    def start(self) -> None:
        for th in self.threads:
            th.start()

    def count(self) -> int:
        with self._mu:
            return len(self.accepted)

    def done(self) -> bool:
        return not any(th.is_alive() for th in self.threads)

    def join(self) -> None:
        self.stop.set()
        for th in self.threads:
            th.join(60)


def _stored_subjects(home) -> Counter:
    m = imaplib.IMAP4("127.0.0.1", home.ports["imap"], timeout=30)
    try:
        m.login("kim@example.test", PASSWORD)
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK"
        if int(data[0]) == 0:
            return Counter()
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        blob = b"".join(part[1] for part in data if isinstance(part, tuple))
        return Counter(re.findall(rb"Subject: (load-\d+-\d+)", blob))
    finally:
        m.logout()


def _wait_until(cond, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_kill9_supervisor_mid_load_then_start_then_shutdown_leaves_nothing(home):
    assert home.coremail("start").returncode == 0
    assert home.userutil("add", "kim@example.test", "--password", PASSWORD).returncode == 0
    sup = _supervisor_pid(home)
    old_set = set(_home_procs(home))
    assert len(old_set) > 4

    load = Load(home.ports["smtp"])
    load.start()
    try:
        assert _wait_until(lambda: load.count() >= 20, 60), "the load did not get going"
        os.kill(sup, signal.SIGKILL)
        r = home.coremail("start", timeout=120)
        assert r.returncode == 0, r.stderr
        # The new set started only once nothing of the old one was left.
        survivors = {p for p in old_set if alive(p)}
        assert not survivors, f"the old set outlived its supervisor: {survivors}"
        roles = Counter(_role(a) for a in _home_procs(home).values())
        assert roles["supervisor"] == 1
        after = load.count()
        # the new set takes mail too (unless the load is already done)
        _wait_until(lambda: load.count() >= after + 20 or load.done(), 60)
    finally:
        load.join()
    assert load.count() >= 40

    stored = _stored_subjects(home)
    lost = [s for s in load.accepted if stored[s.encode()] == 0]
    doubled = [s for s, n in stored.items() if n > 1]
    assert not lost, f"{len(lost)} messages that got a 250 are not stored: {lost[:5]}"
    assert not doubled, f"stored more than once: {doubled[:5]}"

    r = home.coremail("shutdown", timeout=90)
    assert r.returncode == 0, r.stderr
    _assert_nothing_left(home)


def test_runners_and_workers_die_with_the_supervisor(home):
    assert home.coremail("start").returncode == 0
    sup = _supervisor_pid(home)
    old_set = set(_home_procs(home)) - {sup}
    os.kill(sup, signal.SIGKILL)
    assert _wait_until(lambda: not any(alive(p) for p in old_set), 30), \
        f"left running after the supervisor died: {[p for p in old_set if alive(p)]}"
    assert not any(_accepts(home.ports[n]) for n in SERVICE_PORTS)


def test_start_twice_does_not_start_a_second_set(home):
    # Two at once: only one supervisor may win the home.
    procs = [subprocess.Popen([str(BIN / "coremail"), "--home", str(home.path), "start"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    first = _home_procs(home)
    roles = Counter(_role(a) for a in first.values())
    assert roles["supervisor"] == 1, roles
    assert all(roles[s] >= 1 for s in ("smtp", "pop3", "imap", "deliveragent")), roles
    sup = next(p for p, a in first.items() if _role(a) == "supervisor")
    runners = [p for p in first if _ppid(p) == sup]
    assert sorted(_role(first[p]) for p in runners) == ["deliveragent", "imap", "pop3", "smtp", "web"]

    # And once more, afterwards: it says so, exits 0 and changes nothing.
    r = home.coremail("start")
    assert r.returncode == 0, r.stderr
    assert "already running" in r.stdout
    assert set(_home_procs(home)) == set(first)


def test_start_refuses_beside_a_supervisor_that_does_not_answer(home):
    assert home.coremail("start").returncode == 0
    before = set(_home_procs(home))
    (home.path / "run" / "supervisor.sock").unlink()  # its socket gone, the set alive
    r = home.coremail("start")
    assert r.returncode != 0
    assert "does not answer" in r.stderr
    assert set(_home_procs(home)) == before, "a second set was started beside the first"
    # No socket to shut it down with: SIGTERM is its graceful shutdown too.
    os.kill(int((home.path / "run" / "supervisor.pid").read_text()), signal.SIGTERM)
    assert _wait_until(lambda: not any(alive(p) for p in before), 60)


def test_start_stops_a_leftover_set_before_starting(home):
    """A runner of an earlier set that outlived its supervisor (here started by
    hand, holding the home's lock as an inherited one would, its pid file
    written): `start` stops it and its workers first, and says so."""
    lock = os.open(home.path / "run" / "coremail.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(home.path / "logs" / "smtp.log", "ab") as log:
        old = subprocess.Popen([sys.executable, "-m", "coremail.supervisor.runner", "smtp",
                                "--home", str(home.path)], pass_fds=(lock,),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
    os.close(lock)
    try:
        assert b'"ok": true' in old.stdout.readline()
        (home.path / "run" / "smtp.pid").write_text(f"{old.pid}\n")
        old_set = set(_home_procs(home))
        assert old.pid in old_set and len(old_set) == 3  # the runner and its two workers

        r = home.coremail("start", timeout=120)
        assert r.returncode == 0, r.stderr
        assert "leftover" in r.stdout and str(old.pid) in r.stdout, r.stdout
        assert not any(alive(p) for p in old_set), "the old smtp set still runs"
        assert old.wait(5) == 0, "it was not a graceful stop"
        roles = Counter(_role(a) for a in _home_procs(home).values())
        assert roles["supervisor"] == 1
        with smtplib.SMTP("127.0.0.1", home.ports["smtp"], timeout=10) as s:
            assert s.noop()[0] == 250
    finally:
        if old.poll() is None:
            old.kill()
            old.wait()
    r = home.coremail("shutdown", timeout=90)
    assert r.returncode == 0, r.stderr
    _assert_nothing_left(home)
