"""One grep follows a message: the queue id in the SMTP 250 is on the line
that POP3 RETR and IMAP FETCH log when a client reads the message (the
blob of a message that came by SMTP is stored under its queue id)."""
from __future__ import annotations

import imaplib
import poplib
import re
import smtplib

import pytest

from tests.imapd.conftest import ImapServer
from tests.pop3d.conftest import Pop3Server
from tests.smtpd.conftest import PASSWORD, Server as SmtpServer

USER = "carol@example.test"


@pytest.fixture
def home(tmp_path):
    smtp = SmtpServer(tmp_path / "home")
    try:
        smtp.add_user("carol")
        yield smtp
    finally:
        smtp.stop(2)


def send(smtp, subject: str) -> str:
    """Send one message over SMTP; the queue id from its 250 reply."""
    with smtplib.SMTP("127.0.0.1", smtp.ports["smtp"], timeout=10) as c:
        c.ehlo("client.test")
        c.mail("someone@remote.test")
        c.rcpt(USER)
        code, text = c.data(f"Subject: {subject}\r\n\r\nhello\r\n".encode())
    assert code == 250
    return re.search(r"queued as (\S+)", text.decode()).group(1)


def test_pop3_retr_logs_the_queue_id(home):
    qids = [send(home, "one"), send(home, "two")]
    pop3 = Pop3Server(home.home)
    try:
        p = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
        p.user(USER)
        p.pass_(PASSWORD)
        p.retr(2)
        p.retr(1)
        p.top(1, 0)  # a peek, not a retrieval
        p.quit()
    finally:
        pop3.stop(2)   # the session's last pop3.retr line is written as it ends
    lines = pop3.log_lines("pop3.retr")
    assert [(ln["msgs"], ln["user"], ln["count"]) for ln in lines] == [
        (f"2:{qids[1]},1:{qids[0]}", USER, "2")]
    assert all(ln["sid"] for ln in lines)


def test_imap_fetch_of_whole_messages_logs_their_queue_ids(home):
    qids = [send(home, "one"), send(home, "two"), send(home, "three")]
    imap = ImapServer(home.home)
    try:
        c = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
        c.login(USER, PASSWORD)
        c.select("INBOX")
        c.fetch("1:3", "(FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[HEADER])")  # no whole message: no line
        c.fetch("1:2", "(BODY.PEEK[])")
        c.fetch("3", "(RFC822)")
        c.uid("FETCH", "1", "(BODY[])")
        c.fetch("2", "(BODY.PEEK[]<0.10>)")  # a part of one: not a retrieval
        c.logout()
        lines = imap.log_lines("imap.fetch")
    finally:
        imap.stop(2)
    assert [ln["qids"].split(",") for ln in lines] == [qids[:2], [qids[2]], [qids[0]]]
    assert all(ln["user"] == USER and ln["folder"] == "INBOX" and ln["sid"] for ln in lines)
