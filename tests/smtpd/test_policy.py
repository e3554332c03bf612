"""Every refusal of issue 4 with its exact code, through the real service:
relay rules and their tricks, limits, quota, sender mismatch, AUTH, storage
full, malformed addresses; plus aliases, forwards and authenticated relay."""
from __future__ import annotations

import errno
import smtplib

import pytest

from coremail.store.interfaces import Delivery, StorageFull

from .conftest import DOMAIN, PASSWORD, message


@pytest.fixture(scope="module", autouse=True)
def users(server):
    for name in ("ann", "ben", "full", "tiny"):
        server.add_user(name)
    server.accounts.update(f"full@{DOMAIN}", quota=100)
    server.accounts.update(f"tiny@{DOMAIN}", quota=3000)
    server.accounts.add_alias(f"team@{DOMAIN}", f"ann@{DOMAIN}")
    server.accounts.add_alias(f"team@{DOMAIN}", f"ben@{DOMAIN}")
    server.accounts.add_alias(f"annalias@{DOMAIN}", f"ann@{DOMAIN}")
    server.accounts.add_alias(f"outside@{DOMAIN}", "someone@far.test")
    server.store.add_alias(f"loop1@{DOMAIN}", f"loop2@{DOMAIN}")
    server.store.add_alias(f"loop2@{DOMAIN}", f"loop1@{DOMAIN}")
    server.accounts.set_forward(f"ben@{DOMAIN}", "ben@elsewhere.test", keep=True)


def rcpt(srv, address: str) -> tuple[int, bytes]:
    """RCPT TO:<address> exactly as written (smtplib would rewrite the odd ones)."""
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<x@remote.test>")
    reply = r.cmd(f"RCPT TO:<{address}>").encode()
    r.close()
    return int(reply[:3]), reply[4:]


def test_unknown_local_user_550_511(srv):
    code, text = rcpt(srv, f"nobody@{DOMAIN}")
    assert code == 550 and text.startswith(b"5.1.1") and b"nobody@example.test" in text


def test_bare_postmaster_is_accepted(srv):
    """RFC 5321 4.1.1.3: RCPT TO:<Postmaster> needs no domain."""
    srv.accounts.add_alias(f"postmaster@{DOMAIN}", f"ann@{DOMAIN}")
    for address in ("Postmaster", "postmaster"):
        code, text = rcpt(srv, address)
        assert code == 250, text


@pytest.mark.parametrize("address", [
    "someone@far.test",
    f"user%far.test@{DOMAIN}",
    f'"user@far.test"@{DOMAIN}',
    f"@{DOMAIN}:user@far.test",
    f"user@far.test@{DOMAIN}",
    f"far.test!user@{DOMAIN}",
])
def test_relay_refused_571_unauthenticated(srv, address):
    code, text = rcpt(srv, address)
    assert (code, text[:5]) == (550, b"5.7.1"), text
    assert not srv.store.queue_list() or all(
        "far.test" not in r.address for e in srv.store.queue_list() for r in e.recipients
        if e.sender == "x@remote.test")


def test_authenticated_relay_goes_to_queue(srv):
    c = srv.smtp("submission", tls=True, login=f"ann@{DOMAIN}")
    raw = message(sender=f"ann@{DOMAIN}", to="friend@far.test")
    assert c.sendmail(f"ann@{DOMAIN}", ["friend@far.test", f"ben@{DOMAIN}"], raw) == {}
    c.quit()
    entry = [e for e in srv.store.queue_list() if e.sender == f"ann@{DOMAIN}"][-1]
    assert {r.address for r in entry.recipients} == {"friend@far.test", "ben@elsewhere.test"}
    assert srv.store.blobs.read(entry.blob_id).endswith(raw)
    assert srv.inbox(f"ben@{DOMAIN}")[-1].endswith(raw)   # forward with --keep: a local copy too
    ev = srv.log_events("smtp.message")[-1]
    assert ev["user"] == f"ann@{DOMAIN}" and ev["tls"] == "yes"


def test_alias_and_remote_alias(srv):
    c = srv.smtp()
    raw = message(subject="to the team")
    assert c.sendmail("x@remote.test", [f"team@{DOMAIN}", f"outside@{DOMAIN}"], raw) == {}
    c.quit()
    assert srv.inbox(f"ann@{DOMAIN}")[-1].endswith(raw)
    assert srv.inbox(f"ben@{DOMAIN}")[-1].endswith(raw)
    entry = [e for e in srv.store.queue_list() if e.sender == "x@remote.test"][-1]
    assert {r.address for r in entry.recipients} == {"someone@far.test", "ben@elsewhere.test"}


def test_alias_loop_550_546(srv):
    code, text = rcpt(srv, f"loop1@{DOMAIN}")
    assert (code, text[:5]) == (550, b"5.4.6")


def test_too_many_recipients_452_453(srv):
    srv.set(limits={"max_recipients": 2})
    c = srv.smtp()
    c.mail("x@remote.test")
    assert c.rcpt(f"ann@{DOMAIN}")[0] == 250
    assert c.rcpt(f"ben@{DOMAIN}")[0] == 250
    code, text = c.rcpt(f"team@{DOMAIN}")
    assert (code, text[:5]) == (452, b"4.5.3") and b"another message" in text
    c.quit()


def test_size_at_mail_from_552_534(srv):
    srv.set(limits={"max_message_size": "10K"})
    c = srv.smtp()
    assert c.has_extn("size") and c.esmtp_features["size"] == "10240"
    code, text = c.mail("x@remote.test", ["SIZE=20000"])
    assert (code, text[:5]) == (552, b"5.3.4") and b"10 KiB" in text
    c.quit()


def test_size_during_data_552_534(srv):
    srv.set(limits={"max_message_size": "10K"})
    before = len(srv.inbox(f"ann@{DOMAIN}"))
    r = srv.raw()                 # no SIZE= announced: caught while reading DATA
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<x@remote.test>")
    r.cmd(f"RCPT TO:<ann@{DOMAIN}>")
    assert r.cmd("DATA").startswith("354")
    r.send(message(body="y" * 998 + "\r\n") * 40 + b".\r\n")
    assert r.reply().startswith("552 5.3.4")
    assert r.cmd("NOOP").startswith("250")   # the session goes on
    assert len(srv.inbox(f"ann@{DOMAIN}")) == before


def test_header_too_big_552(srv):
    srv.set(limits={"max_header_size": "2K"})
    c = srv.smtp()
    raw = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"z" * 60) for i in range(100)) + b"\r\nbody\r\n"
    with pytest.raises(smtplib.SMTPDataError) as e:
        c.sendmail("x@remote.test", [f"ann@{DOMAIN}"], raw)
    assert e.value.smtp_code == 552 and b"header" in e.value.smtp_error
    c.quit()


def test_quota_at_rcpt_552_522(srv):
    c = srv.smtp()     # SIZE= says it will not fit
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        c.sendmail("x@remote.test", [f"full@{DOMAIN}"], message(body="q" * 200))
    code, text = e.value.recipients[f"full@{DOMAIN}"]
    assert (code, text[:5]) == (552, b"5.2.2") and b"full" in text
    c.quit()
    # No SIZE=, but the mailbox is already at its quota.
    user = srv.store.get_user(f"full@{DOMAIN}")
    ref = srv.store.blobs.write(b"Subject: filler\r\n\r\n" + b"f" * 100)
    srv.store.deliver([Delivery(user.id, ref, check_quota=False)])
    srv.service.handler.pipeline.expansions.clear()   # RCPT may see usage up to 1 s old
    assert rcpt(srv, f"full@{DOMAIN}")[0] == 552


def test_quota_at_commit_552_522(srv):
    """RCPT passes (no SIZE, mailbox not yet full), the atomic check at commit refuses."""
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<x@remote.test>")
    assert r.cmd(f"RCPT TO:<tiny@{DOMAIN}>").startswith("250")
    r.cmd("DATA")
    r.send(message(body="q" * 5000 + "\r\n") + b".\r\n")
    assert r.reply().startswith("552 5.2.2")
    assert srv.inbox(f"tiny@{DOMAIN}") == []
    assert srv.store.get_user(f"tiny@{DOMAIN}").used_bytes == 0


def test_sender_mismatch_553_571_and_own_alias(srv):
    c = srv.smtp("submission", tls=True, login=f"ann@{DOMAIN}")
    code, text = c.mail(f"ben@{DOMAIN}")
    assert (code, text[:5]) == (553, b"5.7.1") and b"ann@example.test" in text
    c.rset()
    assert c.mail(f"annalias@{DOMAIN}")[0] == 250      # own alias: always allowed
    c.rset()
    assert c.mail(f"ANN@{DOMAIN}")[0] == 250
    c.quit()
    srv.set(policy={"allow_sender_mismatch": True})
    c = srv.smtp("submission", tls=True, login=f"ann@{DOMAIN}")
    assert c.mail("whoever@far.test")[0] == 250
    c.quit()


def test_wrong_password_535_578(srv):
    c = srv.smtp("submission", tls=True)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        c.login(f"ann@{DOMAIN}", "wrong")
    assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8")
    c.quit()


def test_login_mechanism_and_bare_local_part(srv):
    c = srv.smtp("smtps")
    c.user, c.password = "ann", PASSWORD
    assert c.auth("LOGIN", c.auth_login)[0] == 235
    c.quit()


def test_auth_needs_tls_538(srv):
    r = srv.raw("submission")
    r.cmd("EHLO x.test")
    assert r.cmd("AUTH PLAIN AGFubgBzZWNyZXQtcHctMQ==").startswith("538 5.7.11")


def test_submission_requires_auth_530(srv):
    c = srv.smtp("submission", tls=True)
    code, text = c.mail(f"ann@{DOMAIN}")
    assert (code, text[:5]) == (530, b"5.7.0")
    c.quit()


def test_failed_auth_throttle_454_then_421(srv):
    srv.set(limits={"auth_failures": 2, "auth_window": "1m"})
    srv.service.handler.throttle.clear()
    try:
        c = srv.smtp("submission", tls=True)
        for _ in range(2):
            assert c.docmd("AUTH", "PLAIN AGFubgB3cm9uZw==")[0] == 535
        code, text = c.docmd("AUTH", "PLAIN AGFubgBzZWNyZXQtcHctMQ==")   # even the right one
        assert (code, text[:5]) == (454, b"4.7.0") and b"minute" in text
        c.docmd("AUTH", "PLAIN AGFubgBzZWNyZXQtcHctMQ==")
        code, text = c.docmd("AUTH", "PLAIN AGFubgBzZWNyZXQtcHctMQ==")
        assert code == 421
    finally:
        srv.service.handler.throttle.clear()


@pytest.mark.parametrize("address, why", [
    (f"ann @{DOMAIN}", b"space"),
    (f"an n@{DOMAIN}", b"space"),
    (f"ann\u3000x@{DOMAIN}", b"space"),
    (f"ann..x@{DOMAIN}", b"dot"),
    ("ann@exa_mple.test", b"domain"),
    ("annexample.test", b"no @"),
])
def test_malformed_address_553_513(srv, address, why):
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<x@remote.test> SMTPUTF8")
    reply = r.cmd(f"RCPT TO:<{address}>").encode()
    assert reply.startswith((b"553 5.1.3", b"501 5.1.3")) and why in reply, reply


def test_normalised_addresses_reach_the_right_mailbox(srv):
    before = len(srv.inbox(f"ann@{DOMAIN}"))
    r = srv.raw()
    r.cmd("EHLO x.test")
    r.cmd("MAIL FROM:<x@remote.test> SMTPUTF8")
    assert r.cmd(f"RCPT TO:<ann@{DOMAIN} >").startswith("250")          # trailing space
    assert r.cmd("RCPT TO:<ANN\uff20EXAMPLE.TEST\u3000>").startswith("250")  # full-width @, space
    r.cmd("DATA")
    r.send(b"Subject: normalised\r\n\r\nhi\r\n.\r\n")
    assert r.reply().startswith("250")
    assert len(srv.inbox(f"ann@{DOMAIN}")) == before + 1   # one copy for the same mailbox


def test_malformed_sender_553_513(srv):
    r = srv.raw()
    r.cmd("EHLO x.test")
    reply = r.cmd("MAIL FROM:<a b@remote.test>")
    assert reply.startswith("553 5.1.3") and "space" in reply


def test_storage_full_452_431_nothing_half_written(srv, monkeypatch):
    blobs = srv.store.blobs
    real_write = blobs.write
    written = []

    def full(*a, **kw):
        raise StorageFull("the server's storage is full; please try again later")
    monkeypatch.setattr(blobs, "write", full)
    c = srv.smtp()
    with pytest.raises(smtplib.SMTPDataError) as e:
        c.sendmail("x@remote.test", [f"ann@{DOMAIN}"], message(subject="disk full"))
    assert e.value.smtp_code == 452 and e.value.smtp_error.startswith(b"4.3.1")
    # The database fails after the blob was written: no blob may stay behind.
    monkeypatch.setattr(blobs, "write", lambda *a, **kw: written.append(real_write(*a, **kw))
                        or written[-1])

    def db_full(*args, **kw):
        raise OSError(errno.ENOSPC, "database or disk is full")
    monkeypatch.setattr(srv.store, "deliver", db_full)
    with pytest.raises(smtplib.SMTPDataError) as e:
        c.sendmail("x@remote.test", [f"ann@{DOMAIN}"], message(subject="db full"))
    assert e.value.smtp_code == 452 and e.value.smtp_error.startswith(b"4.3.1")
    c.quit()
    assert written and not blobs.path(written[0].id).exists()
    assert not any(b"full" in m for m in srv.inbox(f"ann@{DOMAIN}"))


def test_message_checks_add_headers_and_choose_the_folder(srv):
    """A check's result reaches the stored message: its header on top and
    the recipient's copy in the folder it chose (the spam filter's path)."""
    from coremail.pipeline.checks import CheckResult, Score

    class Junker:
        name = "junker"

        async def __call__(self, msg):
            if b"cheap pills" not in msg.content:
                return None
            return CheckResult(scores=[Score("PILLS", 5.0, "sells pills")],
                               headers=[("X-Spam-Flag", "YES")],
                               folders={f"carol@{DOMAIN}": "Junk"})
    srv.add_user("carol")
    checks = srv.service.handler.pipeline.checks
    checks.append(Junker())
    try:
        c = srv.smtp()
        c.sendmail("a@remote.test", [f"carol@{DOMAIN}"], message(body="cheap pills\r\n",
                                                                 to=f"carol@{DOMAIN}"))
        c.sendmail("a@remote.test", [f"carol@{DOMAIN}"], message(body="hello\r\n",
                                                                 to=f"carol@{DOMAIN}"))
        c.quit()
    finally:
        checks.pop()
    user = srv.store.get_user(f"carol@{DOMAIN}")
    junk = srv.store.list_messages(srv.store.get_folder(user.id, "Junk").id)
    assert len(junk) == 1 and len(srv.messages(f"carol@{DOMAIN}")) == 1
    raw = srv.store.blobs.read(junk[0].blob_id)
    assert b"\r\nX-Spam-Flag: YES\r\n" in raw.split(b"\r\n\r\n")[0] + b"\r\n"
    assert "PILLS=+5 (sells pills)" in srv.log_events("smtp.message")[-2]["checks"]


def test_auth_uses_the_login_cache(srv):
    """A second AUTH with the same password is checked without argon2."""
    srv.add_user("dave")
    auth = srv.service.handler.auth
    user = srv.store.get_user(f"dave@{DOMAIN}")
    assert not auth.cache.hit(f"dave@{DOMAIN}", PASSWORD, user)
    c = srv.smtp("submission", tls=True, login=f"dave@{DOMAIN}")
    c.quit()
    assert auth.cache.hit(f"dave@{DOMAIN}", PASSWORD, user)
