"""The client address as every protocol sees it: on a dual-stack listener
(listen.address = "::") an IPv4 client arrives as ::ffff:a.b.c.d and must be
seen as a.b.c.d, so loopback stays loopback (plain-text logins, logs, the
per-address limits and throttles)."""
from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket

import pytest

from coremail.proto.listen import SessionTracker, peer_address
from tests.imapd.conftest import ImapServer, wait_for
from tests.pop3d.conftest import Pop3Server
from tests.smtpd.conftest import Server as SmtpServer
from tests.support.inproc import home_fixture

DUAL = {"listen": {"address": "::"}}
A = "alice@example.test"

_home = home_fixture("peerhome")


@pytest.mark.parametrize("peer, want", [
    (("::ffff:127.0.0.1", 4711, 0, 0), ("127.0.0.1", 4711)),
    (("::ffff:192.0.2.7", 25), ("192.0.2.7", 25)),
    (("127.0.0.1", 110), ("127.0.0.1", 110)),
    (("2001:db8::1", 143, 0, 0), ("2001:db8::1", 143)),
    (("::1", 993, 0, 0), ("::1", 993)),
    (None, ("?", 0)),
])
def test_peer_address(peer, want):
    assert peer_address(peer) == want


def test_over_limit_counts_the_new_session():
    t = SessionTracker()
    a, b, c = object(), object(), object()
    t.add(a, "192.0.2.1")
    t.add(b, "192.0.2.1")
    assert not t.over_limit("192.0.2.1", 2)
    t.add(c, "192.0.2.1")
    assert t.over_limit("192.0.2.1", 2) and not t.over_limit("192.0.2.9", 2)
    t.remove(c, "192.0.2.1")
    assert not t.over_limit("192.0.2.1", 2)


@pytest.fixture
def imap_dual(_home):
    srv = ImapServer(_home, settings=DUAL, address="::")
    yield srv
    srv.stop(2, forget_users=True)


@pytest.fixture
def pop3_dual(_home):
    srv = Pop3Server(_home, settings=DUAL, address="::")
    yield srv
    srv.stop(2, forget_users=True)


def test_imap_login_from_ipv4_loopback_on_a_dual_stack_listener(imap_dual):
    imap_dual.add_user(A)
    c = imaplib.IMAP4("127.0.0.1", imap_dual.port, timeout=10)
    assert "LOGINDISABLED" not in c.capabilities
    c.login(A, imap_dual.password)  # plain text from this machine: allowed
    c.logout()
    [line] = imap_dual.log_lines("imap.login")
    assert line["ip"] == "127.0.0.1"


def test_pop3_login_from_ipv4_loopback_on_a_dual_stack_listener(pop3_dual):
    pop3_dual.add_user(A)
    p = poplib.POP3("127.0.0.1", pop3_dual.port, timeout=10)
    p.user(A)
    p.pass_(pop3_dual.password)
    p.quit()
    [line] = wait_for(pop3_dual.log_lines)
    assert line["ip"] == "127.0.0.1"


def test_smtp_sees_the_ipv4_address_on_a_dual_stack_listener(tmp_path):
    srv = SmtpServer(tmp_path / "home", settings=DUAL, address="::")
    try:
        srv.add_user("bob")
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
            c.sendmail("someone@remote.test", ["bob@example.test"], b"Subject: hi\r\n\r\nhi\r\n")
        [raw] = srv.inbox("bob@example.test")
        assert b"[127.0.0.1]" in raw and b"::ffff:" not in raw
    finally:
        srv.stop(2)


def _greeting(port: int) -> tuple[socket.socket, bytes]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s, s.makefile("rb").readline()


def test_imap_says_bye_over_the_per_address_limit(imap_dual):
    imap_dual.settings(limits={"max_connections_per_ip": 2})
    (a, ga), (b, gb) = _greeting(imap_dual.port), _greeting(imap_dual.port)
    c, gc = _greeting(imap_dual.port)
    assert ga.startswith(b"* OK") and gb.startswith(b"* OK")
    assert gc.startswith(b"* BYE [UNAVAILABLE] Too many connections")
    for s in (a, b, c):
        s.close()


def test_pop3_says_err_over_the_per_address_limit(pop3_dual):
    pop3_dual.settings(limits={"max_connections_per_ip": 2})
    (a, ga), (b, gb) = _greeting(pop3_dual.port), _greeting(pop3_dual.port)
    c, gc = _greeting(pop3_dual.port)
    assert ga.startswith(b"+OK") and gb.startswith(b"+OK")
    assert gc.startswith(b"-ERR [SYS/TEMP] too many connections")
    [line] = wait_for(pop3_dual.log_lines)
    assert line["outcome"] == "refused" and line["ip"] == "127.0.0.1"
    for s in (a, b, c):
        s.close()
