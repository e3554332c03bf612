"""A message past a megabyte is spooled to a file while it arrives (issue 12,
point 4): what is stored must be exactly what an in-memory read gives, with
dot-stuffed lines and bare line ends on either side of every spool piece."""
from __future__ import annotations

from coremail.smtpd import bdat as bdat_mod
from tests.smtpd.conftest import DOMAIN, message


def _count_spools(srv, monkeypatch) -> list:
    made = []
    real = srv.store.blobs.spool_file

    def spool_file():
        made.append(real())
        return made[-1]
    monkeypatch.setattr(srv.store.blobs, "spool_file", spool_file)
    return made


def _stored_body(srv, address: str) -> bytes:
    [raw] = srv.inbox(address)[-1:]
    return raw.split(b"\r\n\r\n", 1)[1]


def test_big_dot_stuffed_message_is_spooled_and_stored_exactly(srv, monkeypatch):
    spools = _count_spools(srv, monkeypatch)
    srv.add_user("spooled")
    to = f"spooled@{DOMAIN}"
    # lines that start with a dot, an odd length so pieces end anywhere, a
    # bare LF (stored as CRLF), and a line longer than a spool piece
    lines = [b".dot line %d" % i + b"x" * (i % 97) for i in range(60_000)]
    lines[30_000] = b"bare\nlf"
    lines[45_000] = b"y" * (1 << 20) + b"z" * 17
    body = b"\r\n".join(lines) + b"\r\n"
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    raw = message(subject="big", to=to, body="") + stuffed
    r = srv.raw()
    assert r.cmd("EHLO client.test").startswith("250")
    assert r.cmd("MAIL FROM:<a@remote.test>").startswith("250")
    assert r.cmd(f"RCPT TO:<{to}>").startswith("250")
    assert r.cmd("DATA").startswith("354")
    r.send(raw + b".\r\n")
    assert r.reply().startswith("250"), "message refused"
    r.close()
    expected = body.replace(b"bare\nlf", b"bare\r\nlf")
    assert len(body) > 3 * bdat_mod.SPOOL_ABOVE
    assert len(spools) == 1 and spools[0].closed
    assert _stored_body(srv, to) == expected


def test_big_bdat_message_is_spooled_and_stored_exactly(srv, monkeypatch):
    spools = _count_spools(srv, monkeypatch)
    srv.add_user("chunked")
    to = f"chunked@{DOMAIN}"
    body = b"".join(b"line %d with a bare CR\r" % i if i % 1000 == 0 else b"line %d\r\n" % i
                    for i in range(300_000))
    raw = message(subject="chunks", to=to, body="") + body + b"\r\n"
    r = srv.raw()
    assert r.cmd("EHLO client.test").startswith("250")
    assert r.cmd("MAIL FROM:<a@remote.test>").startswith("250")
    assert r.cmd(f"RCPT TO:<{to}>").startswith("250")
    step = 700_001   # chunk boundaries fall inside lines, and between a CR and its LF
    for i in range(0, len(raw), step):
        part = raw[i:i + step]
        last = i + step >= len(raw)
        r.send(f"BDAT {len(part)}{' LAST' if last else ''}\r\n".encode() + part)
        assert r.reply().startswith("250")
    r.close()
    assert len(raw) > 3 * bdat_mod.SPOOL_ABOVE
    assert len(spools) == 1 and spools[0].closed
    expected = raw.split(b"\r\n\r\n", 1)[1].replace(b"\r", b"\r\n").replace(b"\r\n\n", b"\r\n")
    assert _stored_body(srv, to) == expected
