"""Storage-full words everywhere, on a real small filesystem: the home's data
directory is a tmpfs with few inodes. When the inodes run out SMTP answers
452 4.3.1 in words and doctor says the inodes ran out (not the space); when
the space runs out POP3 and IMAP say the server's storage is full and doctor
says the space ran out. tests/e2e/test_disk_full.py covers the SMTP, IMAP
APPEND and database cases of a full disk; this adds inodes, POP3, an IMAP
STORE and doctor. Needs root (mount); skipped when mounting is impossible.
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

from tests.support.home import make_home
from tests.support.testdb import sqlite_only

pytestmark = sqlite_only("fills the tmpfs that holds the SQLite database, read with sqlite3")

USER, PASSWORD = "ann@example.test", "full-pass-12345"
SPARE_INODES = 80


def _message(n: str) -> bytes:
    return f"From: x@remote.test\r\nSubject: {n}\r\nMessage-ID: <{n}@remote.test>\r\n\r\nhi\r\n".encode()


def _umount(path: Path) -> None:
    for _ in range(20):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


class Full:
    def __init__(self, home):
        self.home = home
        self.data = home.path / "data"
        self.fillers = self.data / "fillers"

    def doctor(self) -> dict[str, str]:
        r = self.home.coremail("doctor", timeout=120)
        out = {}
        for ln in r.stdout.splitlines():
            status, _, rest = ln.partition(" ")
            check, _, words = rest.strip().partition(": ")
            out[check] = f"{status} {words}"
        return out

    def use_inodes(self) -> None:
        self.fillers.mkdir(exist_ok=True)
        i = 0
        while True:
            try:
                (self.fillers / str(i)).touch()
            except OSError:
                return
            i += 1

    def use_space(self) -> None:
        fd = os.open(self.data / "big", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            st = os.statvfs(self.data)
            os.posix_fallocate(fd, 0, st.f_bavail * st.f_frsize)
        finally:
            os.close(fd)

    def release(self) -> None:
        shutil.rmtree(self.fillers, ignore_errors=True)
        (self.data / "big").unlink(missing_ok=True)

    def checkpoint(self) -> None:
        """Empty the WAL, so the next write must grow it."""
        conn = sqlite3.connect(self.data / "coremail.db", timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def smtp_send(self, n: str) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", self.home.ports["smtp"], timeout=30) as s:
            s.ehlo("client.test")
            assert s.mail("x@remote.test")[0] == 250
            assert s.rcpt(USER)[0] == 250
            return s.data(_message(n))


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a real full filesystem needs root to mount a tmpfs")
    home = make_home(tmp_path_factory.mktemp("full") / "home", workers=1)
    data = home.path / "data"
    saved = home.path / "data.initialised"
    data.rename(saved)
    data.mkdir(mode=0o700)
    inodes = sum(1 for _ in saved.rglob("*")) + SPARE_INODES
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=16m,nr_inodes={inodes},mode=0700",
                        "coremail-full", str(data)], capture_output=True, text=True)
    if r.returncode:
        data.rmdir()
        saved.rename(data)
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        shutil.copytree(saved, data, dirs_exist_ok=True)
        home.userutil("add", USER, "--password", PASSWORD, "--quota", "0", check=True)
        r = home.coremail("start")
        assert r.returncode == 0, r.stdout + r.stderr
        f = Full(home)
        for i in range(3):
            assert f.smtp_send(f"before-{i}")[0] == 250
        yield f
    finally:
        try:
            home.coremail("shutdown", timeout=60)
        finally:
            _umount(data)


def test_no_inodes_left_smtp_452_and_doctor_names_the_inodes(full):
    try:
        full.use_inodes()
        code, text = full.smtp_send("no-inode")
        assert code == 452 and text.startswith(b"4.3.1") and b"storage is full" in text, text
        found = full.doctor()
        assert found["inodes"].startswith("fail the data directory has no free inodes left")
        assert not found["disk space"].startswith("fail"), found["disk space"]
    finally:
        full.release()
    assert full.smtp_send("inode-back")[0] == 250
    assert full.doctor()["inodes"].startswith(("ok", "warn"))


def test_no_space_left_pop3_imap_say_storage_full_and_doctor_names_the_space(full):
    c = imaplib.IMAP4("127.0.0.1", full.home.ports["imap"], timeout=30)
    c.login(USER, PASSWORD)
    c.select("INBOX")
    p = poplib.POP3("127.0.0.1", full.home.ports["pop3"], timeout=30)
    try:
        p.user(USER)
        p.pass_(PASSWORD)
        p.dele(1)
        full.checkpoint()
        full.use_space()
        with pytest.raises(poplib.error_proto) as e:
            p.quit()
        assert b"storage is full" in e.value.args[0] and b"SYS/TEMP" in e.value.args[0]
        typ, data = c.store("1", "+FLAGS", "(\\Flagged)")
        assert typ == "NO" and b"[UNAVAILABLE]" in data[0] and b"storage is full" in data[0]
        assert c.noop()[0] == "OK"
        found = full.doctor()
        assert found["disk space"].startswith("fail the data directory has no free space left")
        assert "452 4.3.1" in found["disk space"]
    finally:
        full.release()
        c.logout()
    assert full.doctor()["disk space"].startswith(("ok", "warn"))
