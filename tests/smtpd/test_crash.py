"""Durable before 250, nothing half-written: the server is killed with
SIGKILL in the middle of DATA and right after a 250, then the store is
opened afresh and checked."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from coremail.config import load_settings
from coremail.services.accounts import Accounts
from coremail.services.home import init_home
from coremail.store import open_store
from tests.support.testdb import home_database

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(home: Path, port: int) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "tests.smtpd.serve", str(home), str(port)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout.readline().strip() == b"ready"
    return p


def talk(port: int, lines: list[bytes]):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    for ln in lines:
        s.sendall(ln + b"\r\n")
        while True:
            reply = f.readline()
            if reply[3:4] != b"-":
                break
    return s, f


@pytest.fixture
def home(tmp_path):
    init_home(tmp_path, "example.test", privileged=False, admin_password="admin-pw-1",
              database=home_database())
    store = open_store(tmp_path, load_settings(tmp_path))
    Accounts(store, "example.test", 0).add_user("kim@example.test", "pw-kim-1", quota=0)
    store.close()
    return tmp_path


def inbox(home: Path) -> list[bytes]:
    store = open_store(home, load_settings(home))
    try:
        u = store.get_user("kim@example.test")
        folder = store.get_folder(u.id, "INBOX")
        return [store.blobs.read(m.blob_id) for m in store.list_messages(folder.id)]
    finally:
        store.close()


def final_blobs(home: Path) -> set[str]:
    root = home / "data" / "blobs"
    return {p.name for d in root.iterdir() if d.is_dir() and d.name != "tmp"
            for p in d.iterdir()}


def test_kill_mid_data_and_after_250(home):
    port = free_port()
    server = start(home, port)
    try:
        # 1. Accepted messages, the last one killed right after its 250.
        accepted = []
        for i in range(5):
            s, f = talk(port, [b"EHLO t.test", b"MAIL FROM:<a@remote.test>",
                               b"RCPT TO:<kim@example.test>", b"DATA"])
            body = b"Subject: n%d\r\n\r\n" % i + b"z" * 50000 + b"\r\n"
            s.sendall(body + b".\r\n")
            reply = f.readline()
            assert reply.startswith(b"250 2.0.0 Ok: queued as"), reply
            accepted.append((reply.split()[-1].decode(), body))
            if i == 4:
                os.kill(server.pid, signal.SIGKILL)
            s.close()
        server.wait(10)
        # 2. A restart, then a kill in the middle of DATA.
        server = start(home, port)
        s, _ = talk(port, [b"EHLO t.test", b"MAIL FROM:<a@remote.test>",
                           b"RCPT TO:<kim@example.test>", b"DATA"])
        s.sendall(b"Subject: half\r\n\r\n" + b"h" * 300000)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        s.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    got = inbox(home)
    assert len(got) == 5
    for (qid, body), raw in zip(accepted, got):
        assert raw.endswith(body) and f"id {qid}".encode() in raw
    assert not any(b"Subject: half" in m for m in got)
    assert final_blobs(home) == {qid for qid, _ in accepted}   # no orphan, nothing partial
