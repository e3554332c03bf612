"""A really full disk, not a monkeypatched os.write: the home's data
directory (SQLite database and blobs) lives on a small tmpfs, the services
run through `coremail start`, and a filler file takes the free space.

The engineering standard: a full disk never loses or duplicates accepted
mail. SMTP answers 452 4.3.1 (never 5xx, never a dropped connection), nothing
half-written stays behind, the servers keep serving what they already hold,
and once space is back the same message goes in exactly once. IMAP APPEND
gets a tagged NO [UNAVAILABLE] (RFC 5530: a temporary failure; OVERQUOTA is
for the user's quota only) on a connection that stays usable.

Needs root (mount); skipped, with the reason, when mounting is not allowed.
"""
from __future__ import annotations

import imaplib
import os
import poplib
import shutil
import smtplib
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.home import Home, make_home
from tests.support.testdb import sqlite_only

pytestmark = sqlite_only("the SQLite database and its WAL on a full tmpfs, read with sqlite3")

DOMAIN = "example.test"
USER = f"ann@{DOMAIN}"
PASSWORD = "disk-full-pw-1"
TMPFS_SIZE = "12m"
PAGE = 4096


def _message(msgid: str, body: str = "hello\r\n") -> bytes:
    return (f"From: x@remote.test\r\nTo: {USER}\r\nSubject: {msgid}\r\n"
            f"Message-ID: <{msgid}@remote.test>\r\n\r\n{body}").encode()


def _mount(path: Path) -> str | None:
    """Mount a tmpfs on path; None on success, else why not."""
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700",
                        "coremail-diskfull", str(path)], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount exited {r.returncode}")


def _umount(path: Path) -> None:
    for _ in range(20):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach it anyway


class Disk:
    """A running home whose data directory is a small tmpfs."""

    def __init__(self, home: Home):
        self.home = home
        self.data = home.path / "data"
        self.filler = self.data / "filler"

    # -- the filesystem
    def avail(self) -> int:
        st = os.statvfs(self.data)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take all the free space but `leave` bytes."""
        self.free()
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.avail() - leave)
        finally:
            os.close(fd)
        assert self.avail() == leave

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    # -- what is stored
    def db(self, sql: str) -> list[tuple]:
        conn = sqlite3.connect(self.data / "coremail.db", timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def checkpoint(self) -> None:
        """Empty the WAL, so the next commit must grow it."""
        [(busy, _, _)] = self.db("PRAGMA wal_checkpoint(TRUNCATE)")
        assert busy == 0 and (self.data / "coremail.db-wal").stat().st_size == 0

    def state(self) -> tuple[int, set[str], list[str]]:
        """Message rows, blob files, temp files."""
        [(rows,)] = self.db("SELECT count(*) FROM messages")
        blobs = self.data / "blobs"
        files = {p.name for p in blobs.rglob("*") if p.is_file() and p.parent.name != "tmp"}
        return rows, files, [p.name for p in (blobs / "tmp").iterdir()]

    def referenced_blobs(self) -> set[str]:
        return {b for (b,) in self.db("SELECT blob_id FROM messages UNION SELECT blob_id FROM queue")}

    def assert_no_orphan(self) -> None:
        """Every blob file is a message's or a queue entry's, every row has its
        blob, and no temp file is left."""
        _, blobs, tmp = self.state()
        assert blobs == self.referenced_blobs() and not tmp

    # -- clients
    def smtp(self) -> smtplib.SMTP:
        s = smtplib.SMTP("127.0.0.1", self.home.ports["smtp"], timeout=30)
        assert s.ehlo()[0] == 250
        return s

    def imap(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.home.ports["imap"], timeout=30)
        c.login(USER, PASSWORD)
        return c

    def send(self, s: smtplib.SMTP, msgid: str, body: str = "hello\r\n") -> tuple[int, bytes]:
        """One transaction; the reply to the end of DATA."""
        assert s.mail("x@remote.test")[0] == 250
        assert s.rcpt(USER)[0] == 250
        return s.data(_message(msgid, body))

    def copies(self, msgid: str) -> int:
        """How many messages in ann's INBOX carry this Message-ID (over IMAP)."""
        c = self.imap()
        try:
            c.select("INBOX", readonly=True)
            typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            assert typ == "OK"
            return sum(f"<{msgid}@remote.test>".encode() in part[1]
                       for part in data if isinstance(part, tuple))
        finally:
            c.logout()

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.home.path / "logs").glob("*"))


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root to mount a tmpfs")
    home = make_home(tmp_path_factory.mktemp("diskfull") / "home", workers=1)
    data = home.path / "data"
    saved = home.path / "data.initialised"
    data.rename(saved)          # init refuses an existing data/: init, then move it onto the tmpfs
    data.mkdir(mode=0o700)
    why = _mount(data)
    if why is not None:
        data.rmdir()
        saved.rename(data)
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    try:
        shutil.copytree(saved, data, dirs_exist_ok=True)
        os.chmod(data, 0o700)
        home.userutil("add", USER, "--password", PASSWORD, "--quota", "0", check=True)
        r = home.coremail("start")
        assert r.returncode == 0, r.stdout + r.stderr
        d = Disk(home)
        with d.smtp() as s:     # mail that is already there when the disk fills
            assert s.sendmail("x@remote.test", [USER], _message("before")) == {}
        yield d
    finally:
        try:
            home.coremail("shutdown", timeout=60)
        finally:
            _umount(data)


@pytest.fixture
def full(disk):
    """Each test starts with free space and leaves the space free."""
    disk.free()
    yield disk
    disk.free()


def _assert_no_traceback(disk: Disk) -> None:
    text = disk.logs()
    assert "Traceback" not in text, text[-3000:]


def test_smtp_full_disk_452_keeps_serving_and_accepts_once_space_is_back(full):
    d = full
    big = "x" * 76 + "\r\n"
    big *= 64 * 1024 // len(big)  # 64 KB: the blob's first pages fit, then ENOSPC mid-write
    s = d.smtp()
    try:
        d.fill(leave=2 * PAGE)
        before = d.state()
        code, text = d.send(s, "smtp-full", big)
        assert (code, text[:5]) == (452, b"4.3.1"), (code, text)
        # Nothing half-written: no row, no blob, no temp file.
        assert d.state() == before and not before[2]
        # The connection and the server keep working.
        assert s.noop()[0] == 250
        assert s.ehlo()[0] == 250
        p = poplib.POP3("127.0.0.1", d.home.ports["pop3"], timeout=30)
        try:
            p.user(USER)
            p.pass_(PASSWORD)
            assert p.stat()[0] >= 1
            assert any(b"Subject: before" in ln for ln in p.retr(1)[1])
        finally:
            p.quit()
        c = d.imap()
        try:
            typ, [count] = c.select("INBOX")
            assert typ == "OK" and int(count) >= 1
            typ, data = c.fetch("1", "(BODY.PEEK[])")
            assert typ == "OK" and b"Subject: before" in data[0][1]
        finally:
            c.logout()
        # Space is back: the client's retry goes in, once.
        d.free()
        code, text = d.send(s, "smtp-full", big)
        assert code == 250, text
    finally:
        s.close()
    assert d.copies("smtp-full") == 1
    d.assert_no_orphan()
    _assert_no_traceback(d)


def test_imap_append_on_a_full_disk_is_a_temporary_no_and_the_session_goes_on(full):
    d = full
    c = d.imap()
    try:
        d.fill()
        before = d.state()
        typ, data = c.append("INBOX", None, None, _message("append-full"))
        assert typ == "NO", (typ, data)
        assert b"[UNAVAILABLE]" in data[0] and b"OVERQUOTA" not in data[0]
        assert d.state() == before
        assert c.noop()[0] == "OK"
        typ, _ = c.select("INBOX")
        assert typ == "OK"
        typ, data = c.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and b"Subject: before" in data[0][1]
        d.free()
        typ, data = c.append("INBOX", None, None, _message("append-full"))
        assert typ == "OK", data
    finally:
        c.logout()
    assert d.copies("append-full") == 1
    d.assert_no_orphan()
    _assert_no_traceback(d)


def test_database_full_after_the_blob_fit_is_452_and_leaves_no_orphan(full):
    """The blob (one page) fits; the SQLite WAL cannot grow for the commit."""
    d = full
    s = d.smtp()
    c = d.imap()
    try:
        d.checkpoint()
        d.fill(leave=PAGE)
        before = d.state()
        code, text = d.send(s, "db-full")
        assert (code, text[:5]) == (452, b"4.3.1"), (code, text)
        assert d.state() == before      # the blob that was written is gone again
        assert "database or disk is full" in d.home.log("smtp", until="database or disk is full")  # SQLite said no
        assert s.noop()[0] == 250
        # IMAP APPEND meets the same wall: a NO, not a dropped connection.
        d.checkpoint()
        d.fill(leave=PAGE)
        typ, data = c.append("INBOX", None, None, _message("db-full-append"))
        assert typ == "NO" and b"[UNAVAILABLE]" in data[0], (typ, data)
        assert d.state() == before
        assert c.noop()[0] == "OK"
        d.free()
        code, text = d.send(s, "db-full")
        assert code == 250, text
        typ, data = c.append("INBOX", None, None, _message("db-full-append"))
        assert typ == "OK", data
    finally:
        s.close()
        c.logout()
    assert d.copies("db-full") == 1 and d.copies("db-full-append") == 1
    d.assert_no_orphan()
    _assert_no_traceback(d)
