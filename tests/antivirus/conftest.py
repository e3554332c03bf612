"""Fixtures of the anti-virus tests: one private clamd for the session (real
clamd from clamav-daemon, tests/support/clamd.py), an in-process SMTP service
per module, and messages with attachments built here."""
from __future__ import annotations

import io
import os
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.smtpd.conftest import Server
from tests.support.clamd import EICAR, HAVE_CLAMD, PrivateClamd

DATA = Path(__file__).parent / "data"
RCPT = "bob@example.test"


@pytest.fixture(scope="session")
def clamd():
    if not HAVE_CLAMD:
        if os.environ.get("COREMAIL_REQUIRE_PEERS") == "1":
            pytest.fail("clamd is missing (Debian's clamav-daemon; `make test-deps`)")
        pytest.skip("clamd (clamav-daemon) is not installed")
    c = PrivateClamd(stream_max="1M").start()
    yield c
    c.remove()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("avhome"))
    srv.add_user("bob")
    yield srv
    srv.stop()


@pytest.fixture
def srv(server):
    yield server
    server.reset_settings()


def mail(*attachments: tuple[str, bytes], body: str = "Please find the file attached.\n",
         subject: str = "a file") -> bytes:
    m = EmailMessage()
    m["From"] = "alice@remote.test"
    m["To"] = RCPT
    m["Subject"] = subject
    m["Message-ID"] = f"<{os.urandom(6).hex()}@remote.test>"
    m.set_content(body)
    for name, data in attachments:
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return m.as_bytes()


def zipped(*members: tuple[str, bytes], encrypted: bool = False) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    raw = b.getvalue()
    if encrypted:   # zipfile cannot encrypt: set the flag bits (nobody will unpack it)
        raw = _flag_encrypted(raw)
    return raw


def _flag_encrypted(raw: bytes) -> bytes:
    out = bytearray(raw)
    i = 0
    while (i := out.find(b"PK\x03\x04", i)) >= 0:
        out[i + 6] |= 1
        i += 4
    i = 0
    while (i := out.find(b"PK\x01\x02", i)) >= 0:
        out[i + 8] |= 1
        i += 4
    return bytes(out)


def send(srv, content: bytes, rcpt: str = RCPT) -> tuple[int, str]:
    with srv.smtp() as c:
        c.mail("alice@remote.test")
        c.rcpt(rcpt)
        code, text = c.data(content)
    return code, text.decode()


def eicar_in_zip_in_zip() -> bytes:
    return zipped(("inner.zip", zipped(("eicar.com.txt", EICAR))))


__all__ = ["DATA", "EICAR", "RCPT", "mail", "send", "zipped", "eicar_in_zip_in_zip"]
