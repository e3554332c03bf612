"""Login, TLS, capabilities, the state machine and malformed input, through
imaplib and raw sockets against the real service."""
from __future__ import annotations

import base64
import imaplib
import socket
import ssl

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from coremail.services.login import is_loopback

from .conftest import PASSWORD


def raw(imap, lines: list[bytes], read_until: bytes = b"", timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", imap.port), timeout=timeout) as s:
        got = s.recv(4096)
        for line in lines:
            s.sendall(line)
        s.settimeout(timeout)
        while read_until not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


def test_login_full_address_and_local_part(imap, alice):
    c = imap.client(alice)
    assert c.state == "AUTH"
    c.logout()
    c = imap.client("alice")
    assert c.select("INBOX")[0] == "OK"
    c.logout()


def test_wrong_password_and_disabled_user(imap, alice):
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login(alice, "wrong")
    c.logout()
    imap.store.update_user(alice, enabled=False)
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    with pytest.raises(imaplib.IMAP4.error):
        c.login(alice, PASSWORD)
    c.logout()


def test_failed_logins_are_throttled(imap, alice):
    imap.settings(limits={"auth_failures": 3})
    for _ in range(3):
        c = imaplib.IMAP4("127.0.0.1", imap.port)
        with pytest.raises(imaplib.IMAP4.error):
            c.login(alice, "nope")
        c.logout()
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        c.login(alice, PASSWORD)  # even the right password waits out the window
    c.logout()


def test_starttls_then_login_and_implicit_tls(imap, alice):
    ctx = ssl._create_unverified_context()
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    assert "STARTTLS" in c.capabilities
    c.starttls(ctx)
    assert "STARTTLS" not in c.capabilities
    c.login(alice, PASSWORD)
    c.logout()
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=ctx)
    c.login("alice", PASSWORD)
    assert c.select("Sent")[0] == "OK"
    c.logout()


def test_authenticate_plain_with_and_without_initial_response(imap, alice):
    token = base64.b64encode(f"\0{alice}\0{PASSWORD}".encode())
    got = raw(imap, [b"a AUTHENTICATE PLAIN " + token + b"\r\n"], b"a ")
    assert b"a OK" in got
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    c.authenticate("PLAIN", lambda _: f"\0{alice}\0{PASSWORD}".encode())
    assert c.state == "AUTH"
    c.logout()
    got = raw(imap, [b"b AUTHENTICATE PLAIN\r\n", b"*\r\n"], b"b ")
    assert b"b BAD" in got


def test_logindisabled_for_remote_clients_without_tls(imap, alice, monkeypatch):
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("192.0.2.7")
    import coremail.services.login as login
    monkeypatch.setattr(login, "is_loopback", lambda ip: False)  # as if from another host
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    assert "LOGINDISABLED" in c.capabilities and "AUTH=PLAIN" not in c.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        c.login(alice, PASSWORD)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    c.starttls(ctx)
    assert "LOGINDISABLED" not in c.capabilities
    c.login(alice, PASSWORD)
    c.logout()


def test_commands_need_the_right_state(imap, alice):
    got = raw(imap, [b"a SELECT INBOX\r\n", b"b FETCH 1 FLAGS\r\n", b"c LOGOUT\r\n"], b"c OK")
    assert b"a BAD" in got and b"b BAD" in got and b"* BYE" in got


def test_literal_plus_login_and_synchronising_literal(imap, alice):
    pw = PASSWORD.encode()
    got = raw(imap, [b"a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(alice), alice.encode(), len(pw), pw),
                     b"b NOOP\r\n"], b"b OK")
    assert b"a OK" in got
    with socket.create_connection(("127.0.0.1", imap.port), timeout=5) as s:
        s.recv(4096)
        s.sendall(b"a LOGIN {%d}\r\n" % len(alice))
        assert s.recv(4096).startswith(b"+ ")
        s.sendall(alice.encode() + b" " + pw + b"\r\n")
        assert b"a OK" in s.recv(4096)


def test_id_namespace_enable(imap, alice):
    c = imap.client(alice)
    typ, data = c.xatom("ID", "NIL")
    assert typ == "OK" and b"coremail" in c.response("ID")[1][0]
    assert c.namespace()[1][0] == b'(("" "/")) NIL NIL'
    typ, _ = c.xatom("ENABLE", "CONDSTORE")
    assert typ == "OK" and c.response("ENABLED")[1] == [b"CONDSTORE"]
    c.logout()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.binary(max_size=80).filter(lambda b: b"\n" not in b and b"{" not in b), min_size=1,
                     max_size=5))
def test_garbage_gets_bad_and_the_connection_survives(imap, alice, junk):
    with socket.create_connection(("127.0.0.1", imap.port), timeout=5) as s:
        s.recv(4096)
        s.sendall(b"a LOGIN alice " + PASSWORD.encode() + b"\r\n")
        got = b""
        while b"a OK" not in got:
            got += s.recv(4096)
        for line in junk:
            s.sendall(line + b"\r\n")
        s.sendall(b"zz9 NOOP\r\n")
        got = b""
        while b"zz9 OK" not in got:
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {junk!r}: {got!r}"
            got += chunk
        assert b"SERVERBUG" not in got


def test_oversized_line_and_literal_are_bad_not_fatal(imap, alice):
    got = raw(imap, [b"a LOGIN alice " + PASSWORD.encode() + b"\r\n", b"b NOOP " + b"x" * 100_000 + b"\r\n",
                     b"c APPEND INBOX {999999999999}\r\n", b"d NOOP\r\n"], b"d OK")
    assert b"b BAD" in got and b"c BAD [TOOBIG]" in got and b"d OK" in got
