"""The intelligent score end to end, over real SMTP and IMAP on loopback:
trained with `spam learn`'s own function, spam lands in Junk with BAYES_999
in X-Spam-Status and ham in INBOX; Amy moving a newsletter into Junk over
IMAP raises her later score for it and not Bob's; moving one back out trains
it as ham (undoing the spam training); the move itself never waits for the
training."""
from __future__ import annotations

import imaplib
import re
import time

import pytest

from coremail.pipeline.bayes.model import BANDS
from coremail.services.spamlearn import learn_paths
from coremail.store.interfaces import GLOBAL_MODEL
from tests.imapd.conftest import ImapServer
from tests.smtpd.conftest import PASSWORD, Server as SmtpServer
from tests.support.mailgen import corpus, message

AMY, BOB = "amy@example.test", "bob@example.test"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("bayes")
    smtp = SmtpServer(root / "home")
    imap = None
    try:
        amy, bob = smtp.add_user("amy"), smtp.add_user("bob")
        for kind, spam in (("spam", True), ("ham", False)):
            d = root / kind
            d.mkdir()
            for i, raw in enumerate(corpus(kind, 60)):
                (d / f"{i}.eml").write_bytes(raw)
            learn_paths(smtp.store, [d], spam)
        imap = ImapServer(smtp.home)
        yield smtp, imap, amy, bob
    finally:
        if imap is not None:
            imap.stop(2)
        smtp.stop(2)


def send(smtp, to: str, raw: bytes) -> None:
    with smtp.smtp() as c:
        c.sendmail("someone@remote.test", [to], raw)


def status(imap, user: str, folder: str, subject: str) -> str | None:
    """The X-Spam-Status of the message with that subject in the folder, over IMAP."""
    c = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    try:
        c.login(user, PASSWORD)
        c.select(folder, readonly=True)
        _, hits = c.search(None, "SUBJECT", f'"{subject}"')
        if not hits[0]:
            return None
        _, data = c.fetch(hits[0].split()[-1], "(BODY.PEEK[HEADER.FIELDS (X-Spam-Status)])")
        return data[0][1].decode().split(":", 1)[1].strip()
    finally:
        c.logout()


def move(c: imaplib.IMAP4, seqset: str, dest: str) -> str:
    """RFC 6851 MOVE (imaplib knows the command but has no method for it)."""
    typ, _ = c._simple_command("MOVE", seqset, dest)
    return typ


RANK = {name: -i for i, (_, name, _) in enumerate(BANDS)}    # BAYES_999 highest


def band(value: str) -> str:
    return re.search(r"BAYES_\d+", value).group()


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.05)
    return pred()


def test_spam_to_junk_ham_to_inbox(served):
    smtp, imap, _, _ = served
    spam, ham = message("spam", 901, to=AMY), message("ham", 901, to=AMY)
    send(smtp, AMY, spam)
    send(smtp, AMY, ham)
    subject = lambda raw: re.search(rb"Subject: (.*)\r\n", raw).group(1).decode()
    got = wait_for(lambda: status(imap, AMY, "Junk", subject(spam)))
    assert got.startswith("Yes, score=6.0") and band(got) == "BAYES_999"
    assert status(imap, AMY, "INBOX", subject(spam)) is None
    got = status(imap, AMY, "INBOX", subject(ham))
    assert got.startswith("No, ") and band(got) == "BAYES_00"


def test_junk_moves_train_that_user_only(served):
    smtp, imap, amy, bob = served
    for n in range(5):
        send(smtp, AMY, message("news", n, to=AMY))
    before_amy = status(imap, AMY, "INBOX", "The weekly digest no. 4")
    send(smtp, BOB, message("news", 50, to=BOB))
    before_bob = status(imap, BOB, "INBOX", "The weekly digest no. 50")
    assert before_amy and before_bob and band(before_amy) == band(before_bob)

    c = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    c.login(AMY, PASSWORD)
    c.select("INBOX")
    _, hits = c.search(None, "SUBJECT", '"weekly digest"')
    t0 = time.monotonic()
    typ = move(c, hits[0].replace(b" ", b",").decode(), "Junk")
    moved_in = time.monotonic() - t0
    assert typ == "OK"
    assert wait_for(lambda: smtp.store.bayes_totals([amy.id]).get(amy.id) == (5, 0))
    assert smtp.store.bayes_totals([bob.id]) == {}

    send(smtp, AMY, message("news", 60, to=AMY))
    send(smtp, BOB, message("news", 61, to=BOB))
    after_amy = wait_for(lambda: status(imap, AMY, "Junk", "The weekly digest no. 60"))
    assert after_amy and RANK[band(after_amy)] > RANK[band(before_amy)], (after_amy, before_amy)
    after_bob = status(imap, BOB, "INBOX", "The weekly digest no. 61")
    assert band(after_bob) == band(before_bob), (after_bob, before_bob)

    # One back out of Junk: ham for Amy, her spam training of it undone.
    c.select("Junk")
    _, hits = c.search(None, "SUBJECT", '"weekly digest no. 2"')
    typ = move(c, hits[0].split()[0].decode(), "INBOX")
    assert typ == "OK"
    assert wait_for(lambda: smtp.store.bayes_totals([amy.id]).get(amy.id) == (4, 1))
    # Out of Junk into Trash is deleting spam, not calling it good.
    _, hits = c.search(None, "SUBJECT", '"weekly digest no. 3"')
    move(c, hits[0].split()[0].decode(), "Trash")
    c.logout()
    time.sleep(0.5)
    assert smtp.store.bayes_totals([amy.id])[amy.id] == (4, 1)
    assert smtp.store.bayes_totals([GLOBAL_MODEL])[GLOBAL_MODEL] == (60, 60)
    assert moved_in < 2.0
