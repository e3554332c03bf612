"""Push and scale: IDLE hears about new mail, another session's expunge and
a POP3-style delete within a second; a message with an 8-bit UTF-8 subject and
a 3 MB attachment round-trips byte for byte (APPEND, and SMTP delivery through
the real smtp service); a 100,000-message mailbox selects in well under a second."""
from __future__ import annotations

import asyncio
import base64
import os
import smtplib
import socket
import time

from sqlalchemy import insert

from coremail.app import ServiceContext
from coremail.obs.log import Log
from coremail.proto.listen import bind_socket

from .conftest import PASSWORD, wait_for
from .test_messages import msg


def login_raw(imap, who):
    s = socket.create_connection(("127.0.0.1", imap.port), timeout=5)
    s.recv(4096)
    s.sendall(f"a LOGIN {who} {PASSWORD}\r\nb SELECT INBOX\r\n".encode())
    got = b""
    while b"b OK" not in got:
        got += s.recv(65536)
    return s


def idle_until(s, needle: bytes, timeout: float) -> tuple[bytes, float]:
    start = time.monotonic()
    got = b""
    s.settimeout(timeout)
    while needle not in got and time.monotonic() - start < timeout:
        try:
            got += s.recv(65536)
        except socket.timeout:
            break
    return got, time.monotonic() - start


def test_idle_sees_new_mail_expunge_and_pop3_delete_within_a_second(imap, alice):
    imap.deliver(alice, msg(1))
    imap.deliver(alice, msg(2))
    s = login_raw(imap, alice)
    s.sendall(b"c IDLE\r\n")
    assert s.recv(4096).startswith(b"+ ")
    time.sleep(0.3)
    imap.deliver(alice, msg(3))  # as the smtp service of another process would
    got, took = idle_until(s, b"* 3 EXISTS", 3)
    assert b"* 3 EXISTS" in got and took < 1.0
    other = imap.client(alice)
    other.select("INBOX")
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    got, took = idle_until(s, b"* 1 EXPUNGE", 3)
    assert b"* 1 EXPUNGE" in got and took < 1.0
    other.store("1", "+FLAGS", "(\\Flagged)")
    got, took = idle_until(s, b"FLAGS (\\Flagged)", 3)
    assert b"* 1 FETCH (UID 2 FLAGS (\\Flagged))" in got and took < 1.0
    other.logout()
    user = imap.store.get_user(alice)
    [m3] = [m for m in imap.messages(alice) if m.uid == 3]
    imap.store.delete_messages(user.id, [m3.id])  # what POP3 DELE + QUIT does
    got, took = idle_until(s, b"* 2 EXPUNGE", 3)
    assert b"* 2 EXPUNGE" in got and took < 1.0
    s.sendall(b"DONE\r\nd LOGOUT\r\n")
    got, _ = idle_until(s, b"d OK", 3)
    assert b"c OK" in got
    s.close()


def big_message() -> bytes:
    attachment = base64.encodebytes(os.urandom(3 * 1024 * 1024)).replace(b"\n", b"\r\n")
    return ("From: Zoë <zoe@remote.test>\r\nTo: alice@example.test\r\n"
            "Subject: Grüße aus Köln – 日本語 ✓\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Hallo, schöne Grüße!\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
            'Content-Disposition: attachment; filename="data.bin"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + attachment + b"--b1--\r\n"


def test_big_utf8_message_round_trips_through_append(imap, alice):
    data = big_message()
    c = imap.client(alice)
    assert c.append("INBOX", None, None, data)[0] == "OK"
    c.select("INBOX")
    typ, got = c.fetch("1", "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE BODY.PEEK[1])")
    assert got[0][1] == data
    assert b"RFC822.SIZE %d" % len(data) in got[0][0]
    assert got[1][1] == "Hallo, schöne Grüße!".encode()
    assert b'("ATTACHMENT" ("FILENAME" "data.bin"))' in got[1][0] or b"data.bin" in got[1][0]
    c.literal = "Grüße".encode()
    assert c.search("UTF-8", "SUBJECT")[1] == [b"1"]
    c.logout()


def test_big_utf8_message_round_trips_through_smtp(imap, alice):
    from coremail.smtpd.service import create as create_smtp

    ctx = ServiceContext(imap.home, imap.ctx.config, imap.store, Log("smtp", stream=imap.logbuf))
    smtp = create_smtp(ctx)
    sock = bind_socket("127.0.0.1", 0, "smtp")
    port = sock.getsockname()[1]
    asyncio.run_coroutine_threadsafe(smtp.start({"smtp": sock}), imap.loop).result(10)
    try:
        data = big_message()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("client.example")
            s.sendmail("zoe@remote.test", [alice], data)
        assert wait_for(lambda: imap.messages(alice), 10)
        c = imap.client(alice)
        c.select("INBOX")
        typ, got = c.fetch("1", "(BODY.PEEK[] ENVELOPE)")
        body = got[0][1]
        assert body.endswith(data)  # the smtp service puts its Received: field on top
        assert "Grüße aus Köln".encode() in got[0][0] or b"Subject" in body
        c.logout()
    finally:
        asyncio.run_coroutine_threadsafe(smtp.stop(2), imap.loop).result(15)


def test_select_of_100000_messages_is_fast(imap):
    from coremail.store.sql import schema as t

    imap.add_user("big@example.test")
    user = imap.store.get_user("big@example.test")
    folder = imap.store.get_folder(user.id, "INBOX")
    ref = imap.store.blobs.write(msg(1))
    n = 100_000
    rows = [dict(user_id=user.id, folder_id=folder.id, uid=i, blob_id=ref.id, size=ref.size,
                 internaldate=1.7e9 + i, flags="\\Seen" if i % 3 else "", modseq=i, meta=None)
            for i in range(1, n + 1)]
    with imap.store.engine.begin() as conn:
        conn.execute(insert(t.messages), rows)
        conn.execute(t.folders.update().where(t.folders.c.id == folder.id).values(uidnext=n + 1,
                                                                                 highestmodseq=n))
    c = imap.client("big@example.test")
    start = time.monotonic()
    typ, data = c.select("INBOX")
    took = time.monotonic() - start
    assert data == [b"100000"] and took < 0.6, took
    typ, data = c.fetch("99999:*", "(UID FLAGS)")
    assert b"UID 100000" in data[-1]
    start = time.monotonic()
    typ, data = c.search(None, "UNSEEN")
    assert len(data[0].split()) == n // 3 and time.monotonic() - start < 1.0
    c.logout()
