"""RFC conformance found by review: line ends inside the message (RFC 5321
2.3.8, 4.1.1.4), BDAT framing (RFC 3030), the AUTH exchange (RFC 4954), VRFY
syntax and the Received header's grammar (RFC 5321 4.1.3, 4.4)."""
from __future__ import annotations

import asyncio
import base64
import time

import pytest

from coremail.ingest.trace import trace_headers
from coremail.smtpd.parser import to_crlf

from .conftest import DOMAIN, PASSWORD, TLS


@pytest.fixture(scope="module", autouse=True)
def users(server):
    server.add_user("rfc")


def _transaction(r, rcpt: str = f"rfc@{DOMAIN}") -> None:
    assert r.cmd("EHLO client.test").startswith("250")
    assert r.cmd("MAIL FROM:<a@remote.test>").startswith("250")
    assert r.cmd(f"RCPT TO:<{rcpt}>").startswith("250")


def _last(srv) -> bytes:
    return srv.inbox(f"rfc@{DOMAIN}")[-1]


def _no_bare_eol(data: bytes) -> bool:
    n = data.count(b"\r\n")
    return data.count(b"\n") == n and data.count(b"\r") == n


def test_bare_lf_is_not_the_end_and_is_stored_as_crlf(srv):
    r = srv.raw()
    _transaction(r)
    assert r.cmd("DATA").startswith("354")
    r.send(b"Subject: lf\nbare lf\n.\nstill data\r\n.\r\n")
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    got = _last(srv)
    assert _no_bare_eol(got)
    assert got.endswith(b"Subject: lf\r\nbare lf\r\n.\r\nstill data\r\n")
    r.close()


def test_smuggled_end_of_data_stays_inside_the_message(srv):
    """<LF>.<CRLF> is not the end of data; the "command" after it is text,
    and what is stored cannot be cut there by a later reader either."""
    r = srv.raw()
    _transaction(r)
    r.cmd("DATA")
    r.send(b"Subject: smuggle\r\n\r\nbody\n.\r\nMAIL FROM:<x@evil.test>\r\n"
           b"RCPT TO:<rfc@example.test>\r\n\r\n.\r\nNOOP\r\n")
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    assert r.reply().startswith("250 2.0.0 Ok")    # the NOOP, nothing in between
    got = _last(srv)
    assert _no_bare_eol(got)
    assert got.endswith(b"body\r\n.\r\nMAIL FROM:<x@evil.test>\r\n"
                        b"RCPT TO:<rfc@example.test>\r\n\r\n")
    r.close()


def test_bare_cr_is_stored_as_crlf(srv):
    r = srv.raw()
    _transaction(r)
    r.cmd("DATA")
    r.send(b"Subject: cr\r\n\r\none\rtwo\r\n..dot\r\n.\r\n")
    assert r.reply().startswith("250")
    assert _last(srv).endswith(b"\r\n\r\none\r\ntwo\r\n.dot\r\n")
    r.close()


def test_end_of_data_split_across_reads(srv):
    r = srv.raw()
    _transaction(r)
    r.cmd("DATA")
    for piece in (b"Subject: split\r\n\r\nbody\r", b"\n", b".", b"\r", b"\n"):
        r.send(piece)
        time.sleep(0.05)
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    assert _last(srv).endswith(b"Subject: split\r\n\r\nbody\r\n")
    assert r.cmd("NOOP").startswith("250")
    r.close()


def test_bdat_message_gets_crlf_line_ends(srv):
    r = srv.raw()
    _transaction(r)
    part1 = b"Subject: bdat lf\nX: 1\r"
    part2 = b"\n\r\nno final newline"
    r.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert r.reply().startswith("250")
    r.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    assert _last(srv).endswith(b"Subject: bdat lf\r\nX: 1\r\n\r\nno final newline\r\n")
    r.close()


def test_bdat_zero_last_after_chunks(srv):
    r = srv.raw()
    _transaction(r)
    chunk = b"Subject: zero last\r\n\r\nx\r\n"
    r.send(b"BDAT %d\r\n" % len(chunk) + chunk)
    assert r.reply().startswith("250")
    assert r.cmd("BDAT 0 LAST").startswith("250 2.0.0 Ok: queued as")
    assert _last(srv).endswith(chunk)
    r.close()


def test_malformed_bdat_still_reads_past_its_chunk(srv):
    r = srv.raw()
    _transaction(r)
    r.send(b"BDAT 5 BOGUS\r\nhello")
    assert r.reply().startswith("501 5.5.4")
    assert r.cmd("NOOP").startswith("250")   # "hello" was not taken as a command
    r.close()


def test_mail_parameters(srv):
    r = srv.raw()
    r.cmd("EHLO client.test")
    # BINARYMIME is not advertised: a parameter "not implemented" (RFC 5321 4.2.3, RFC 3030 3)
    assert r.cmd("MAIL FROM:<a@remote.test> BODY=BINARYMIME").startswith("555 5.5.4")
    assert r.cmd("MAIL FROM:<a@remote.test> BODY=QUUX").startswith("501 5.5.4")
    assert r.cmd("mail from:<> body=8bitmime size=10").startswith("250")
    r.close()


def test_vrfy_needs_an_argument(srv):
    r = srv.raw()
    assert r.cmd("VRFY").startswith("501 5.5.4")
    assert r.cmd("VRFY rfc").startswith("252")
    assert r.cmd("EXPN staff").startswith("502 5.5.1")
    r.close()


def _tls_session(srv):
    r = srv.raw("submission")
    r.cmd("EHLO client.test")
    assert r.cmd("STARTTLS").startswith("220")
    r.sock = TLS.wrap_socket(r.sock, server_hostname="mail.example.test")
    assert "AUTH PLAIN LOGIN" in r.cmd("EHLO client.test")
    return r


def test_auth_line_too_long_ends_the_exchange_500_556(srv):
    srv.set(limits={"max_line_length": 600})
    r = _tls_session(srv)
    assert r.cmd("AUTH PLAIN").startswith("334")
    assert r.cmd("A" * 2000).startswith("500 5.5.6")
    # the exchange is over: the next line is a command, not an AUTH response
    assert r.cmd("NOOP").startswith("250")
    token = base64.b64encode(f"\0rfc@{DOMAIN}\0{PASSWORD}".encode()).decode()
    assert r.cmd(f"AUTH PLAIN {token}").startswith("235 2.7.0")
    r.close()


def test_auth_equals_sign_is_an_empty_initial_response(srv):
    r = _tls_session(srv)
    # RFC 4954 4: "=" is a zero-length initial response (here an empty user name)
    assert r.cmd("AUTH LOGIN =").startswith("334 UGFzc3dvcmQ6")
    assert r.cmd("*").startswith("501")
    assert r.cmd("AUTH PLAIN !!!").startswith("501 5.5.2")
    r.close()


def test_received_header_grammar():
    def received(helo: str, ip: str) -> str:
        head = trace_headers(qid="Q1", sender="a@b.test", helo=helo, ip=ip,
                             hostname="mx.example.test", tls=False, auth=False, esmtp=True,
                             smtputf8=False, recipients=["x@example.test"]).decode()
        return head.split("Received: ", 1)[1]

    assert received("client.test", "192.0.2.1").startswith("from client.test ([192.0.2.1])")
    assert received("[192.0.2.1]", "192.0.2.1").startswith("from [192.0.2.1] ([192.0.2.1])")
    # RFC 5321 4.1.3: an IPv6 address literal is tagged
    assert received("h.test", "2001:db8::1").startswith("from h.test ([IPv6:2001:db8::1])")
    # a name that is no domain must not break the header (';' starts the date)
    r = received("evil;x (y)", "192.0.2.1")
    assert r.startswith("from unknown (helo=evilxy) ([192.0.2.1])") and r.count(";") == 1
    assert received("", "192.0.2.1").startswith("from unknown ([192.0.2.1])")


def test_to_crlf():
    assert to_crlf(b"") == b""
    assert to_crlf(b"a\r\nb\r\n") == b"a\r\nb\r\n"
    assert to_crlf(b"a\nb\rc\r\n\n") == b"a\r\nb\r\nc\r\n\r\n"
    assert to_crlf(b"a\r\nb") == b"a\r\nb\r\n"
    assert to_crlf(b"a\r") == b"a\r\n"


def test_message_sent_before_the_354_is_not_stalled(srv, monkeypatch):
    """A client that does not wait for 354 (RFC 2920 says it should) and sends
    more than the command-mode buffer must still get its message through,
    not a data timeout."""
    srv.set(limits={"data_timeout": "5s"})
    handler = srv.service.handler
    slow_rcpt = handler.on_rcpt

    async def on_rcpt(session, path):   # the bytes pile up while RCPT is judged
        await asyncio.sleep(0.5)
        return await slow_rcpt(session, path)

    monkeypatch.setattr(handler, "on_rcpt", on_rcpt)
    r = srv.raw()
    body = b"Subject: eager\r\n\r\n" + (b"x" * 998 + b"\r\n") * 4000 + b".\r\n"
    r.send(f"EHLO x.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<rfc@{DOMAIN}>\r\n"
           "DATA\r\n".encode() + body)
    replies = [r.reply() for _ in range(4)]
    assert replies[3].startswith("354")
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    assert _last(srv).endswith(b"x" * 998 + b"\r\n")
    r.close()
