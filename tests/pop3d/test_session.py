"""The pop3 service on loopback, driven with poplib and raw sockets: login
rules, the maildrop snapshot, exact bytes, DELE only at QUIT, UIDL stability,
locking, throttling, STLS/POP3S, garbage, idle and graceful stop."""
from __future__ import annotations

import base64
import os
import poplib
import socket
import ssl
import time

import pytest

from .conftest import PASSWORD

A = "alice@example.test"


def client(pop3, user: str = "alice", password: str = PASSWORD) -> poplib.POP3:
    p = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
    p.user(user)
    p.pass_(password)
    return p


def retr_bytes(p: poplib.POP3, n: int) -> bytes:
    _, lines, octets = p.retr(n)
    data = b"".join(ln + b"\r\n" for ln in lines)
    assert octets == len(data)
    return data


class Raw:
    """A line-level client for the cases poplib hides."""

    def __init__(self, port: int, tls: bool = False):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            self.s = ctx.wrap_socket(self.s)
        self.f = self.s.makefile("rb")
        self.greeting = self.line()

    def line(self) -> bytes:
        return self.f.readline()

    def cmd(self, text: bytes | str) -> bytes:
        self.s.sendall((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.line()

    def close(self):
        self.f.close()  # the makefile holds the descriptor open too
        self.s.close()


def msg(subject: str, body: str = "hello\r\n") -> bytes:
    return f"From: <bob@example.test>\r\nTo: <{A}>\r\nSubject: {subject}\r\n\r\n{body}".encode()


# ------------------------------------------------------------------ login
def test_login_full_address_and_bare_local_part(pop3):
    pop3.add_user(A)
    for name in (A, "alice", "ALICE@Example.Test"):
        p = client(pop3, name)
        assert p.stat() == (0, 0)
        p.quit()


def test_wrong_password_is_auth_error_and_disabled_user_refused(pop3):
    pop3.add_user(A)
    p = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
    p.user("alice")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_("wrong")
    p.quit()
    pop3.store.update_user(A, enabled=False)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client(pop3)


def test_auth_plain_initial_and_continuation(pop3):
    pop3.add_user(A)
    token = base64.b64encode(f"\0{A}\0{PASSWORD}".encode()).decode()
    r = Raw(pop3.port)
    assert r.cmd("AUTH PLAIN " + token).startswith(b"+OK")
    assert r.cmd("QUIT").startswith(b"+OK")
    r = Raw(pop3.port)
    assert r.cmd("AUTH PLAIN") == b"+ \r\n"
    assert r.cmd("*").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN") == b"+ \r\n"
    assert r.cmd(token).startswith(b"+OK")
    r.close()
    r = Raw(pop3.port)
    bad = base64.b64encode(f"bob@example.test\0{A}\0{PASSWORD}".encode()).decode()
    assert r.cmd("AUTH PLAIN " + bad).startswith(b"-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN !!notbase64").startswith(b"-ERR [AUTH]")
    assert r.cmd("AUTH") == b"+OK SASL mechanisms follow\r\n"
    assert r.line() == b"PLAIN\r\n" and r.line() == b".\r\n"
    r.close()


def test_capa(pop3):
    p = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
    caps = p.capa()
    for c in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"):
        assert c in caps
    assert caps["SASL"] == ["PLAIN"]
    p.quit()


def test_plaintext_refused_off_loopback_until_stls(pop3, monkeypatch):
    import coremail.services.login as login
    monkeypatch.setattr(login, "is_loopback", lambda ip: False)
    pop3.add_user(A)
    p = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\].*STLS"):
        p.user("alice")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    p.stls(ctx)
    assert "USER" in p.capa() and "STLS" not in p.capa()
    p.user("alice")
    p.pass_(PASSWORD)
    p.quit()
    pop3.settings(policy={"allow_plaintext_auth": True})
    client(pop3).quit()
    time.sleep(0.2)
    assert [ln["tls"] for ln in pop3.log_lines()[-2:]] == ["yes", "no"]


def test_pop3s_implicit_tls(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("over tls"))
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    p = poplib.POP3_SSL("127.0.0.1", pop3.ports["pop3s"], context=ctx, timeout=10)
    assert "STLS" not in p.capa()
    p.user(A)
    p.pass_(PASSWORD)
    assert retr_bytes(p, 1) == msg("over tls")
    p.quit()


def test_stls_discards_pipelined_plaintext(pop3):
    r = Raw(pop3.port)
    r.s.sendall(b"STLS\r\nUSER injected\r\n")
    assert r.line().startswith(b"+OK")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    s = ctx.wrap_socket(r.s)
    s.sendall(b"PASS x\r\n")
    assert s.recv(200).startswith(b"-ERR send USER first")
    s.close()


def test_failed_logins_are_throttled_per_ip(pop3):
    pop3.add_user(A)
    pop3.settings(limits={"auth_failures": 3})
    for _ in range(3):
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client(pop3, password="nope")
    with pytest.raises(poplib.error_proto, match=r"\[LOGIN-DELAY\]"):
        client(pop3)  # even the right password waits now
    pop3.forget_failed_logins()
    client(pop3).quit()


# ------------------------------------------------------------------ maildrop
def test_bytes_exact_including_utf8_and_3mb_attachment(pop3):
    pop3.add_user(A)
    utf8 = ("From: Jürgen <j@example.test>\r\nTo: <alice@example.test>\r\n"
            "Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln — 日本語\r\n.\r\n..\r\n"
            ).encode("utf-8")
    blob = base64.encodebytes(os.urandom(3 * 1024 * 1024)).replace(b"\n", b"\r\n")
    big = (b"Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + blob + b"--b--\r\n")
    pop3.deliver(A, utf8)
    pop3.deliver(A, big)
    p = client(pop3)
    assert p.stat() == (2, len(utf8) + len(big))
    assert [int(x.split()[1]) for x in p.list()[1]] == [len(utf8), len(big)]
    assert retr_bytes(p, 1) == utf8
    assert retr_bytes(p, 2) == big
    top = p.top(2, 2)[1]
    assert top[:2] == [b"Subject: big", b"Content-Type: multipart/mixed; boundary=b"]
    assert top[-2:] == [b"--b", b"Content-Type: application/octet-stream"]
    p.quit()


def test_bare_lf_blob_is_sent_normalised_and_counted_as_sent(pop3):
    pop3.add_user(A)
    pop3.deliver(A, b"Subject: lf\n\n.dot\nno final newline")
    p = client(pop3)
    want = b"Subject: lf\r\n\r\n.dot\r\nno final newline\r\n"
    assert p.stat() == (1, len(want))
    assert retr_bytes(p, 1) == want
    p.quit()


def test_dele_applies_only_at_quit_and_frees_quota(pop3):
    pop3.add_user(A)
    for i in range(3):
        pop3.deliver(A, msg(f"m{i}"))
    used = pop3.store.get_user(A).used_bytes
    p = client(pop3)
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    assert p.stat()[0] == 2
    p.rset()
    assert p.stat()[0] == 3
    p.dele(1)
    p.dele(3)
    assert len(pop3.inbox(A)) == 3  # nothing happens before QUIT
    assert b"2 messages deleted" in p.quit()
    left = pop3.inbox(A)
    assert len(left) == 1
    assert pop3.store.get_user(A).used_bytes == used - 2 * len(msg("m0"))
    p = client(pop3)
    assert retr_bytes(p, 1) == msg("m1")
    p.quit()


def test_dropped_connection_deletes_nothing(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("keep"))
    r = Raw(pop3.port)
    r.cmd("USER alice")
    assert r.cmd("PASS " + PASSWORD).startswith(b"+OK")
    assert r.cmd("DELE 1").startswith(b"+OK")
    r.close()
    time.sleep(0.3)
    assert len(pop3.inbox(A)) == 1
    assert pop3.log_lines()[-1]["outcome"] == "dropped"


def test_uidl_stable_and_snapshot_at_login(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("one"))
    pop3.deliver(A, msg("two"))
    p = client(pop3)
    first = p.uidl()[1]
    pop3.deliver(A, msg("three"))  # arrives mid-session: not in this maildrop
    assert p.stat()[0] == 2
    with pytest.raises(poplib.error_proto):
        p.retr(3)
    p.dele(1)
    p.quit()
    p = client(pop3)
    second = dict(x.split() for x in p.uidl()[1])
    assert p.stat()[0] == 2
    assert second[b"1"] == first[1].split()[1]  # "two" keeps its UIDL after "one" went
    assert p.uidl(2).split()[2] not in {x.split()[1] for x in first}
    assert retr_bytes(p, 2) == msg("three")
    p.quit()


def test_in_use_while_another_session_holds_the_maildrop(pop3):
    pop3.add_user(A)
    pop3.service.lock_wait = 0.2
    p = client(pop3)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        client(pop3)
    p.quit()
    client(pop3).quit()  # released at QUIT


def test_pipelining_and_garbage(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("p"))
    r = Raw(pop3.port)
    r.s.sendall(f"USER alice\r\nPASS {PASSWORD}\r\nSTAT\r\nNOOP\r\n".encode())
    assert [r.line()[:3] for _ in range(4)] == [b"+OK"] * 4
    assert r.cmd(b"\xff\xfe garbage").startswith(b"-ERR")
    assert r.cmd("RETR abc").startswith(b"-ERR")
    assert r.cmd("RETR 99").startswith(b"-ERR no such message")
    assert r.cmd("USER again").startswith(b"-ERR")
    assert r.cmd("X" * 10000).startswith(b"-ERR command line too long")
    assert r.cmd("STAT").startswith(b"+OK 1 ")
    r.close()


def test_too_many_bad_commands_close(pop3):
    pop3.settings(limits={"max_unknown_commands": 3})
    r = Raw(pop3.port)
    for _ in range(3):
        assert r.cmd("FOO").startswith(b"-ERR")
    assert r.line().startswith(b"-ERR too many")
    assert r.line() == b""


def test_idle_timeout_deletes_nothing(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("idle"))
    pop3.service.min_idle_timeout = 0.0
    pop3.settings(limits={"idle_timeout": "1s"})
    r = Raw(pop3.port)
    r.cmd("USER alice")
    r.cmd("PASS " + PASSWORD)
    assert r.cmd("DELE 1").startswith(b"+OK")
    assert r.line().startswith(b"-ERR autologout")
    assert r.line() == b""
    assert len(pop3.inbox(A)) == 1


def test_graceful_stop_says_goodbye_and_deletes_nothing(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("stay"))
    r = Raw(pop3.port)
    r.cmd("USER alice")
    r.cmd("PASS " + PASSWORD)
    assert r.cmd("DELE 1").startswith(b"+OK")
    pop3.call(pop3.service.stop(5))
    assert r.line() == b"-ERR [SYS/TEMP] server shutting down; no messages were deleted, please reconnect\r\n"
    assert r.line() == b""
    assert len(pop3.inbox(A)) == 1
    log = pop3.log_lines()[-1]
    assert (log["user"], log["outcome"], log["deleted"]) == (A, "shutdown", "0")


def test_session_log_line(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("log"))
    p = client(pop3)
    retr_bytes(p, 1)
    p.dele(1)
    p.quit()
    time.sleep(0.1)
    log = pop3.log_lines()[-1]
    assert log["user"] == A and log["ip"] == "127.0.0.1" and log["tls"] == "no"
    assert (log["retrieved"], log["deleted"], log["bytes"]) == ("1", "1", str(len(msg("log"))))
    assert log["sid"]


def test_login_cache_shared_by_workers_and_invalidated_by_password_change(pop3, tmp_path):
    from coremail.services.login import LoginCache
    from coremail.services.accounts import Accounts
    user = pop3.add_user(A)
    key = b"k" * 32
    one, two = (LoginCache(shared_dir=tmp_path / "c", key=key),
                LoginCache(shared_dir=tmp_path / "c", key=key))
    assert not two.hit(A, PASSWORD, user)
    one.remember(A, PASSWORD, user)
    assert two.hit(A, PASSWORD, user)            # another worker, no argon2
    assert not LoginCache(shared_dir=tmp_path / "c", key=b"x" * 32).hit(A, PASSWORD, user)
    assert not two.hit(A, "other", user)
    assert oct((tmp_path / "c").stat().st_mode & 0o777) == "0o700"
    assert PASSWORD.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "c").iterdir())
    client(pop3).quit()                           # the service caches this login
    changed = Accounts(pop3.store, "example.test").set_password(A, "new password")
    assert not LoginCache(shared_dir=tmp_path / "c", key=key).hit(A, PASSWORD, changed)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client(pop3)                              # old password, cached or not: refused
    client(pop3, password="new password").quit()


def test_random_garbage_never_breaks_the_session(pop3):
    """Random lines (hypothesis-generated) into a live, logged-in session:
    each gets exactly one +OK/-ERR line, and the session stays usable."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    pop3.add_user(A)
    pop3.deliver(A, msg("fuzz"))
    pop3.settings(limits={"max_unknown_commands": 1000})
    r = Raw(pop3.port)
    r.cmd("USER alice")
    assert r.cmd("PASS " + PASSWORD).startswith(b"+OK")
    words = st.sampled_from([b"LIST", b"UIDL", b"TOP", b"DELE", b"NOOP", b"STAT", b"AUTH",
                             b"USER", b"x", b"1", b"0", b"-1", b"99999999999", b"\xff", b" "])
    lines = st.lists(words, max_size=4).map(b" ".join) | st.binary(max_size=40)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(lines)
    def one(line):
        line = line.replace(b"\r", b"").replace(b"\n", b"")
        if line.upper().startswith((b"QUIT", b"RSET", b"RETR", b"LIST", b"UIDL")):
            return  # those answer with several lines or end the session
        first = r.cmd(line)
        assert first.startswith((b"+OK", b"-ERR")), first
        if first.startswith(b"+OK") and line.upper().startswith(b"TOP"):
            while r.line() != b".\r\n":
                pass
    one()
    assert r.cmd("RSET").startswith(b"+OK")
    assert r.cmd("STAT").startswith(b"+OK 1 ")
    assert r.cmd("QUIT").startswith(b"+OK")
    assert len(pop3.inbox(A)) == 1


def test_a_message_whose_bytes_are_gone_is_an_err_not_a_dropped_session(pop3):
    pop3.add_user(A)
    pop3.deliver(A, msg("small"))
    pop3.deliver(A, msg("big", "x" * (400 * 1024) + "\r\n"))  # streamed, not read inline
    p = client(pop3)
    pop3.store.blobs.delete([m.blob_id for m in pop3.inbox(A)])
    for n in (1, 2):
        with pytest.raises(poplib.error_proto, match=f"message {n} was removed by another client"):
            p.retr(n)
        with pytest.raises(poplib.error_proto, match=f"message {n} was removed by another client"):
            p.top(n, 1)
    assert p.noop().startswith(b"+OK")
    p.quit()


def test_a_snapshot_keeps_its_messages_readable_when_another_client_expunges_them(pop3):
    # RFC 2180 4.1 for POP3: the maildrop is a snapshot until QUIT; the
    # session's view of the INBOX holds the blobs of what it listed.
    pop3.add_user(A)
    pop3.deliver(A, msg("kept for the snapshot"))
    (m,) = pop3.inbox(A)
    pop3.store.purge_removed(grace=0)                # what earlier tests left
    p = client(pop3)
    pop3.store.expunge(m.folder_id, [m.uid])         # an IMAP client, meanwhile
    pop3.call(pop3.service.views.step(time.monotonic()))
    assert pop3.store.purge_removed(grace=0) == 0
    assert b"Subject: kept for the snapshot" in retr_bytes(p, 1)
    p.quit()
    pop3.call(pop3.service.views.step(time.monotonic()))
    assert pop3.store.purge_removed(grace=0) == 1
    assert not pop3.store.blobs.path(m.blob_id).exists()
