"""The engine on the wire: sequence, extensions, pipelining, DATA framing,
BDAT, STARTTLS and the garbage a hostile client sends."""
from __future__ import annotations

import smtplib
import time

import pytest

from .conftest import DOMAIN, TLS, message


@pytest.fixture(scope="module", autouse=True)
def users(server):
    for name in ("bob", "carol", "dave"):
        server.add_user(name)


def test_greeting_and_ehlo_extensions(srv):
    r = srv.raw()
    assert r.greeting.startswith("220 mail.example.test ESMTP")
    ehlo = r.cmd("EHLO client.test")
    for ext in ("PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                "CHUNKING", "STARTTLS"):
        assert ext in ehlo
    assert "AUTH" not in ehlo   # never before TLS, loopback included
    assert r.cmd("QUIT").startswith("221 2.0.0")


def test_auth_offered_after_starttls_only(srv):
    c = srv.smtp("submission", tls=True)
    assert c.has_extn("auth") and "PLAIN" in c.esmtp_features["auth"]
    assert "LOGIN" in c.esmtp_features["auth"] and not c.has_extn("starttls")
    c.quit()
    c = srv.smtp("smtps")
    assert "PLAIN" in c.esmtp_features["auth"] and not c.has_extn("starttls")
    c.quit()


def test_sequence_errors(srv):
    r = srv.raw()
    assert r.cmd("MAIL FROM:<a@remote.test>").startswith("503 5.5.1")
    assert r.cmd("HELO").startswith("501 5.5.4")
    assert r.cmd("EHLO client.test").startswith("250")
    assert r.cmd("RCPT TO:<bob@example.test>").startswith("503 5.5.1")
    assert r.cmd("DATA").startswith("503 5.5.1")
    assert r.cmd("MAIL FROM:<a@remote.test>").startswith("250 2.1.0")
    assert r.cmd("MAIL FROM:<a@remote.test>").startswith("503 5.5.1")
    assert r.cmd("DATA").startswith("503 5.5.1")
    assert r.cmd("RCPT TO:<nobody@example.test>").startswith("550 5.1.1")
    assert r.cmd("DATA").startswith("554 5.5.1")
    assert r.cmd("RSET").startswith("250")
    assert r.cmd("MAIL FROM:a@remote.test").startswith("501 5.5.4")
    assert r.cmd("MAIL FROM:<a@remote.test> FOO=1").startswith("555 5.5.4")
    assert r.cmd("MAIL FROM:<a@remote.test> SIZE=abc").startswith("501 5.5.4")
    assert r.cmd("VRFY bob").startswith("252")
    assert r.cmd("NOOP").startswith("250")
    r.close()


def test_deliver_with_trace_headers_and_queue_id(srv):
    c = srv.smtp()
    body = "Line one\r\n.leading dot\r\n..two dots\r\n\r\nÜnïcödé 8bit\r\n"
    raw = message(body=body)
    resp = c.sendmail("alice@remote.test", [f"bob@{DOMAIN}"], raw)
    assert resp == {}
    code, text = c.noop()
    c.quit()
    got = srv.inbox(f"bob@{DOMAIN}")[-1]
    assert got.startswith(b"Return-Path: <alice@remote.test>\r\nReceived: from client.test")
    assert b"by mail.example.test (coremail) with ESMTP id " in got
    assert got.endswith(raw + b"" if raw.endswith(b"\r\n") else raw + b"\r\n")
    assert b"\r\n.leading dot\r\n..two dots\r\n" in got
    ev = srv.log_events("smtp.message")[-1]
    assert ev["result"] == "250/2.0.0" and ev["qid"] in got.decode("utf-8")
    assert ev["sender"] == "<alice@remote.test>" and "bob@example.test" in ev["rcpts"]
    assert ev["ip"] == "127.0.0.1" and ev["helo"] == "client.test" and ev["tls"] == "no"
    assert int(ev["size"]) == len(raw) and "ms" in ev and ev["sid"]


def test_reply_carries_queue_id_and_first_line_dot(srv):
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<>")
    r.cmd(f"RCPT TO:<carol@{DOMAIN}>")
    assert r.cmd("DATA").startswith("354")
    r.send(b"..starts with a dot\r\nSubject: x\r\n.\r\n")
    reply = r.reply()
    assert reply.startswith("250 2.0.0 Ok: queued as ")
    qid = reply.split()[-1]
    got = srv.inbox(f"carol@{DOMAIN}")[-1]
    assert f"id {qid}".encode() in got and got.endswith(b"\r\n.starts with a dot\r\nSubject: x\r\n")
    assert got.startswith(b"Return-Path: <>\r\n")


def test_pipelining_in_one_write(srv):
    r = srv.raw()
    r.cmd("EHLO x.test")
    body = message(subject="pipelined")
    r.send(b"MAIL FROM:<p@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
           b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<dave@example.test>\r\nDATA\r\n")
    replies = [r.reply() for _ in range(5)]
    assert [x[:3] for x in replies] == ["250", "250", "550", "250", "354"]
    r.send(body + b".\r\nMAIL FROM:<q@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
           b"DATA\r\n")
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    assert [r.reply()[:3] for _ in range(3)] == ["250", "250", "354"]
    r.send(b"Subject: second\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert r.reply().startswith("250 2.0.0")
    assert r.reply().startswith("221")
    assert any(b"Subject: pipelined" in m for m in srv.inbox(f"dave@{DOMAIN}"))


def test_large_message_in_many_chunks(srv):
    c = srv.smtp()
    big = ("x" * 998 + "\r\n.\r\n") * 300   # dots on their own line must survive
    raw = message(body=big)
    assert c.sendmail("big@remote.test", [f"bob@{DOMAIN}"], raw) == {}
    c.quit()
    assert srv.inbox(f"bob@{DOMAIN}")[-1].endswith(raw)


def test_bdat_chunking(srv):
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.send(b"BDAT 5\r\nhello")   # no transaction: the chunk is read past, then refused
    assert r.reply().startswith("503 5.5.1")
    # the 5 bytes after the refusal were consumed, so the session is still in step
    assert r.cmd("NOOP").startswith("250")
    r.cmd("MAIL FROM:<b@remote.test>")
    r.cmd(f"RCPT TO:<carol@{DOMAIN}>")
    part1 = b"Subject: bdat\r\n\r\n.line with dot\r\n"
    part2 = b"end\r\n"
    r.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert r.reply().startswith("250 2.0.0")
    r.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    assert r.cmd("DATA").startswith("503")
    assert srv.inbox(f"carol@{DOMAIN}")[-1].endswith(part1 + part2)


def test_bdat_oversize(srv):
    srv.set(limits={"max_message_size": 1000})
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<b@remote.test>")
    r.cmd(f"RCPT TO:<carol@{DOMAIN}>")
    r.send(b"BDAT 800\r\n" + b"a" * 800)
    assert r.reply().startswith("250")
    r.send(b"BDAT 800 LAST\r\n" + b"a" * 800)
    assert r.reply().startswith("552 5.3.4")
    assert r.cmd("NOOP").startswith("250")


def test_unknown_commands_limit(srv):
    srv.set(limits={"max_unknown_commands": 3})
    r = srv.raw()
    assert r.cmd("FOO").startswith("500 5.5.1")
    assert r.cmd("BAR baz").startswith("500 5.5.1")
    assert r.cmd("QUUX").startswith("421 4.7.0")
    assert r.closed()


def test_garbage_bytes_get_an_error_and_others_keep_working(srv):
    r = srv.raw()
    assert r.cmd("\xff\xfe\x00garbage".encode("latin-1").decode("latin-1")).startswith("500")
    r.send(b"\x80\x81\x82\r\n")
    assert r.reply().startswith("500 5.5.2")
    r.send(b"\x00\x01\x02\x03\r\n")
    assert r.reply().startswith("500 5.5.2")
    other = srv.smtp()
    assert other.sendmail("x@remote.test", [f"bob@{DOMAIN}"], message()) == {}
    other.quit()


def test_line_too_long(srv):
    srv.set(limits={"max_line_length": 600})
    r = srv.raw()
    r.send(b"EHLO " + b"a" * 5000 + b"\r\n")
    assert r.reply().startswith("500 5.5.2 line too long")
    assert r.cmd("EHLO ok.test").startswith("250")


def test_idle_timeout(srv):
    srv.set(limits={"idle_timeout": "1s"})
    r = srv.raw()
    t = time.monotonic()
    assert r.reply().startswith("421 4.4.2")
    assert time.monotonic() - t < 4
    assert r.closed()


def test_data_timeout(srv):
    srv.set(limits={"data_timeout": "1s"})
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<a@remote.test>")
    r.cmd(f"RCPT TO:<bob@{DOMAIN}>")
    r.cmd("DATA")
    r.send(b"Subject: never finished\r\n")
    assert r.reply().startswith("421 4.4.2")
    assert not any(b"never finished" in m for m in srv.inbox(f"bob@{DOMAIN}"))


def test_connections_per_ip(srv):
    srv.set(limits={"max_connections_per_ip": 2})
    a, b = srv.raw(), srv.raw()
    with pytest.raises(smtplib.SMTPConnectError) as e:
        srv.smtp()
    assert e.value.smtp_code == 421 and b"4.7.0" in e.value.smtp_error
    a.close()
    b.close()


def test_smtputf8(srv):
    r = srv.raw()
    r.cmd("EHLO x.test")
    assert r.cmd("MAIL FROM:<jürgen@remote.test>").startswith("553 5.6.7")
    assert r.cmd("MAIL FROM:<jürgen@remote.test> SMTPUTF8").startswith("250")
    assert r.cmd(f"RCPT TO:<bob@{DOMAIN}>").startswith("250")
    r.cmd("DATA")
    r.send("Subject: grüße\r\n\r\nhallo\r\n.\r\n".encode())
    assert r.reply().startswith("250")
    assert srv.inbox(f"bob@{DOMAIN}")[-1].startswith("Return-Path: <jürgen@remote.test>".encode())


def test_starttls_discards_pipelined_commands(srv):
    r = srv.raw("submission")
    r.cmd("EHLO x.test")
    r.send(b"STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\n")
    assert r.reply().startswith("220 2.0.0")
    tls = TLS.wrap_socket(r.sock, server_hostname="mail.example.test")
    f = tls.makefile("rb")
    tls.sendall(b"EHLO x.test\r\n")
    lines = []
    while True:
        ln = f.readline()
        lines.append(ln)
        if ln[3:4] == b" ":
            break
    assert lines[0].startswith(b"250-")     # no stray reply to the injected MAIL
    assert any(b"AUTH PLAIN LOGIN" in ln for ln in lines)
    tls.close()
