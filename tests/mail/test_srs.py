"""SRS addresses: our own round trip, forgeries and expiry, and compatibility
with Debian's postsrsd (its TCP tables run on loopback with the same secret file)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from coremail.mail.srs import Srs, SrsForged, ensure_secret, is_srs
from tests.support.peers import free_port, wait_port

POSTSRSD = shutil.which("postsrsd") or "/usr/sbin/postsrsd"


def test_round_trip_forgery_and_rotation(tmp_path):
    srs = Srs(tmp_path)
    addr = srs.forward("Alice@Remote.Test", "example.test")
    assert is_srs(addr.partition("@")[0]) and addr.endswith("@example.test")
    assert srs.reverse(addr) == "Alice@Remote.Test"
    for bad in (addr.replace("SRS0=", "SRS0=x", 1), "SRS0=abcd=AB=remote.test=a@example.test"):
        with pytest.raises(SrsForged):
            srs.reverse(bad)
    # A new secret signs; the old one still reverses what it signed.
    path = ensure_secret(tmp_path)
    path.write_text("brand-new-secret\n" + path.read_text())
    assert srs.reverse(addr) == "Alice@Remote.Test"
    assert srs.forward("a@r.test", "example.test") != Srs(tmp_path / "other").forward(
        "a@r.test", "example.test")


def test_expired_address_refused(tmp_path):
    srs = Srs(tmp_path)
    scheme = srs._scheme()
    scheme._time_fn = lambda: time.time() - 40 * 86400
    scheme._valid_ts_cache = None
    old = scheme.forward("a@remote.test", "example.test")
    scheme._time_fn = time.time
    scheme._valid_ts_cache = None
    with pytest.raises(SrsForged):
        srs.reverse(old)


def _ask(port: int, address: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"get {address}\n".encode())
        return s.recv(4096).decode().strip()


@pytest.mark.skipif(not (os.path.exists(POSTSRSD) and os.geteuid() == 0),
                    reason="needs root and postsrsd")
def test_same_addresses_as_postsrsd(tmp_path):
    ours = Srs(tmp_path)
    secret = ensure_secret(tmp_path)
    with tempfile.TemporaryDirectory() as d:   # postsrsd runs as nobody
        os.chmod(d, 0o755)
        shared = Path(d) / "secret"
        shutil.copy(secret, shared)
        os.chmod(shared, 0o644)
        fwd, rev = free_port(), free_port()
        p = subprocess.Popen([POSTSRSD, f"-s{shared}", "-dexample.test", "-l127.0.0.1",
                              f"-f{fwd}", f"-r{rev}", "-unobody", "-4"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", fwd)
            wait_port("127.0.0.1", rev)
            theirs = _ask(fwd, "Alice@Remote.Test")
            assert theirs == "200 " + ours.forward("Alice@Remote.Test", "example.test")
            mine = ours.forward("bob@far.test", "example.test")
            assert _ask(rev, mine) == "200 bob@far.test"
            assert ours.reverse(theirs[4:]) == "Alice@Remote.Test"
            assert _ask(rev, mine.replace("SRS0=", "SRS0=x", 1)).startswith("500")
        finally:
            p.terminate()
            p.wait(10)
