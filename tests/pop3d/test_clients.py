"""Real clients against the pop3 service: fetchmail (fetch-and-delete and
leave-on-server with UIDL), curl's pop3://, and mail that arrives through
our own SMTP service, compared byte for byte with what RETR returns.
Debian packages: fetchmail, curl."""
from __future__ import annotations

import base64
import os
import poplib
import shutil
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from coremail.proto.listen import bind_socket

from .conftest import PASSWORD

A = "alice@example.test"


def message(n: int) -> bytes:
    return (f"From: <bob@example.test>\r\nTo: <{A}>\r\nSubject: fetch {n}\r\n"
            f"Message-ID: <{n}@test>\r\n\r\nbody {n}\r\n.starts with a dot\r\n").encode()


def fetchmail(pop3, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, list[bytes]]:
    if shutil.which("fetchmail") is None:
        pytest.skip("fetchmail is not installed (Debian package fetchmail)")
    out = tmp_path / "delivered"
    out.mkdir(exist_ok=True)
    mda = tmp_path / "mda.sh"  # one file per message, whatever fetchmail expands in its mda string
    mda.write_text(f'#!/bin/sh\nexec cat > "$(mktemp -p {out} msg.XXXXXXXX)"\n')
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    # No TLS on loopback: `sslproto ''` stops fetchmail's opportunistic STLS.
    rc.write_text(f'poll 127.0.0.1 proto pop3 port {pop3.port} auth password\n'
                  f'  user "{A}" password "{PASSWORD}" sslproto \'\'\n'
                  f'  mda "{mda}"\n')
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)}
    before = set(out.iterdir())
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--idfile",
                        str(tmp_path / "uids"), "--pidfile", str(tmp_path / "pid"), *extra],
                       capture_output=True, text=True, timeout=60, env=env)
    got = sorted(set(out.iterdir()) - before, key=lambda p: p.stat().st_mtime_ns)
    return r, [p.read_bytes() for p in got]


def test_fetchmail_fetch_and_delete(pop3, tmp_path):
    pop3.add_user(A)
    for n in range(3):
        pop3.deliver(A, message(n))
    r, got = fetchmail(pop3, tmp_path, "--nokeep")
    assert r.returncode == 0, r.stderr
    assert len(got) == 3
    for n in range(3):
        assert any(g.endswith(message(n).split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n"))
                   or g.endswith(message(n).split(b"\r\n\r\n", 1)[1]) for g in got)
    assert pop3.inbox(A) == []
    assert pop3.store.get_user(A).used_bytes == 0


def test_fetchmail_keep_sees_each_message_once(pop3, tmp_path):
    pop3.add_user(A)
    pop3.deliver(A, message(1))
    pop3.deliver(A, message(2))
    r, got = fetchmail(pop3, tmp_path, "--keep", "--uidl")
    assert r.returncode == 0, r.stderr
    assert len(got) == 2
    r, got = fetchmail(pop3, tmp_path, "--keep", "--uidl")
    assert r.returncode == 1 and got == []  # 1: no new mail
    pop3.deliver(A, message(3))
    r, got = fetchmail(pop3, tmp_path, "--keep", "--uidl")
    assert r.returncode == 0, r.stderr
    assert len(got) == 1 and b"Subject: fetch 3" in got[0]
    assert len(pop3.inbox(A)) == 3


def test_curl_pop3(pop3):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    pop3.add_user(A)
    pop3.deliver(A, message(7))
    base = f"pop3://127.0.0.1:{pop3.port}"
    auth = ["--user", f"{A}:{PASSWORD}", "-s", "--max-time", "20"]
    listing = subprocess.run(["curl", *auth, base + "/"], capture_output=True, timeout=30)
    assert listing.stdout == f"1 {len(message(7))}\r\n".encode()
    one = subprocess.run(["curl", *auth, base + "/1"], capture_output=True, timeout=30)
    assert one.returncode == 0 and one.stdout == message(7)
    assert len(pop3.inbox(A)) == 1


@pytest.fixture
def smtp(pop3):
    """Our SMTP service in the same loop and home, when it exists."""
    try:
        from coremail.smtpd.service import create
    except ImportError:
        pytest.skip("coremail.smtpd is not there yet")
    service = create(pop3.ctx)
    sock = bind_socket("127.0.0.1", 0, "smtp")
    port = sock.getsockname()[1]
    pop3.call(service.start({"smtp": sock}))
    yield port
    pop3.call(service.stop(2))


def test_smtp_in_pop3_out_byte_for_byte(pop3, smtp):
    pop3.add_user(A)
    utf8 = ("From: Jürgen <juergen@example.org>\r\nTo: <alice@example.test>\r\n"
            "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Grüße aus Köln, 東京からこんにちは\r\n.a line with a dot\r\n").encode()
    payload = base64.encodebytes(os.urandom(3 * 1024 * 1024)).replace(b"\n", b"\r\n")
    big = (b"From: <juergen@example.org>\r\nTo: <alice@example.test>\r\nSubject: attachment\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + payload + b"--zz--\r\n")
    with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as s:
        s.sendmail("juergen@example.org", [A], utf8, mail_options=["BODY=8BITMIME"])
        s.sendmail("juergen@example.org", [A], big)
    deadline = time.time() + 20
    while len(pop3.inbox(A)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    stored = [pop3.store.blobs.read(m.blob_id) for m in pop3.inbox(A)]
    p = poplib.POP3("127.0.0.1", pop3.port, timeout=30)
    p.user(A)
    p.pass_(PASSWORD)
    for n, sent in ((1, utf8), (2, big)):
        _, lines, octets = p.retr(n)
        got = b"".join(ln + b"\r\n" for ln in lines)
        assert got == stored[n - 1] and octets == len(got)
        assert got.endswith(sent)  # only trace headers were added in front
    p.quit()
