"""Two nodes of one system on loopback: one PostgreSQL database, one blob
directory, node A made by `coremail init --database --blobs`, node B by
`coremail init --join`, each started with `coremail start` on its own ports
and hostname. Real clients only (smtplib, imaplib, poplib, raw sockets).

What must hold: mail taken by SMTP on A is read over IMAP and POP3 on B; an
IMAP IDLE on B sees a delivery through A within a second (PostgreSQL
LISTEN/NOTIFY); a POP3 session on A locks the maildrop against B; failed
logins on A count on B; `coremail status --all` and the webadmin (signed in
on A, used on B) show both nodes; and a
kill -9 of the whole of node A with mail queued for a remote that is down
loses nothing: B delivers every message once the remote is back, none twice.
The kill is the last test of the module (node A stays dead).
"""
from __future__ import annotations

import collections
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
import time

import pytest

from coremail.config import load_settings
from coremail.services.accounts import Accounts
from coremail.store import open_store
from tests.support.dnsserver import ZoneServer
from tests.support.nodes import ADMIN_PASSWORD, first_node, join_node
from tests.support.peers import HAVE_SINK, Sink
from tests.web.conftest import shot

DOMAIN = "example.test"
ANN, ANN_PW = f"ann@{DOMAIN}", "ann-pass-12345"
BOB, BOB_PW = f"bob@{DOMAIN}", "bob-pass-12345"


@pytest.fixture(scope="module")
def nodes(pg_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("nodes")
    url = pg_cluster.new_database()
    blobs = root / "shared-blobs"
    zone = ZoneServer().start()
    sink = Sink()        # the remote: down until the kill test brings it up
    common = {"delivery.nameservers": f'["{zone.nameserver}"]',
              "delivery.relayhost": f'"127.0.0.1:{sink.port}"',
              "delivery.retry_intervals": '["1s"]',
              "limits.auth_failures": "3",
              "workers.smtp": "1", "workers.pop3": "1", "workers.imap": "1",
              "workers.deliveragent": "1"}
    a = first_node(root / "a", url, blobs, "a.example.test")
    b = join_node(root / "b", url, blobs, "b.example.test")
    started = []
    try:
        for node in (a, b):
            node.configure(common)
        store = open_store(a.path, load_settings(a.path))   # as `userutil add`, one process
        try:
            accounts = Accounts(store, DOMAIN)
            for address, pw in ((ANN, ANN_PW), (BOB, BOB_PW)):
                accounts.add_user(address, pw)
        finally:
            store.close()
        for node in (a, b):
            started.append(node.start())
        yield a, b, sink
    finally:
        for node in started:
            node.shutdown()
        if sink.proc is not None:
            sink.stop()
        sink.remove()
        zone.stop()


def send(node, rcpt: str, msgid: str, subject: str = "hello") -> str:
    data = (f"From: carol@example.net\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n\r\n"
            "hello from the other node\r\n")
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30) as s:
        s.ehlo("client.example.net")
        s.sendmail("carol@example.net", [rcpt], data)
    return msgid


def submit(node, messages: list[tuple[str, str]]) -> None:
    """(recipient, Message-ID) pairs, each a message submitted by ann, in one session."""
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=30) as s:
        s.ehlo("client.example.net")
        s.starttls(context=ssl._create_unverified_context())
        s.login(ANN, ANN_PW)
        for rcpt, msgid in messages:
            s.sendmail(ANN, [rcpt], f"From: {ANN}\r\nTo: {rcpt}\r\nSubject: out\r\n"
                       f"Message-ID: <{msgid}>\r\n\r\nto the remote\r\n")


def imap_messages(node, user: str, pw: str) -> list[bytes]:
    with imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=30) as m:
        m.login(user, pw)
        m.select("INBOX")
        _, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [d[1] for d in data if isinstance(d, tuple)]


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_mail_to_a_is_read_over_imap_and_pop3_on_b(nodes):
    a, b, _ = nodes
    send(a, BOB, "cross-1@example.net", "across nodes")
    msgs = wait_for(lambda: [m for m in imap_messages(b, BOB, BOB_PW)
                             if b"cross-1@example.net" in m], 10, "the message over IMAP on B")
    # node A took it: its own hostname in the Received header
    assert re.search(rb"Received: from .*\r?\n?.*by a\.example\.test", msgs[0]), msgs[0][:600]
    p = poplib.POP3("127.0.0.1", b.ports["pop3"], timeout=30)
    try:
        p.user(BOB)
        p.pass_(BOB_PW)
        count, _ = p.stat()
        assert count >= 1
        body = b"\r\n".join(p.retr(count)[1])
        assert b"cross-1@example.net" in body
    finally:
        p.quit()


def test_status_all_lists_both_nodes(nodes):
    a, b, _ = nodes
    out = wait_for(lambda: (lambda o: o if "a.example.test\timap\trunning" in o
                            and "b.example.test\timap\trunning" in o else "")(
        b.coremail("status", "--all").stdout), 15, "both nodes in status --all")
    for host in ("a.example.test", "b.example.test"):
        assert f"{host}\tnode\treporting" in out
        for svc in ("smtp", "pop3", "imap", "web", "deliveragent"):
            assert f"{host}\t{svc}\trunning" in out, out


def test_shared_certificate_and_dkim_keys(nodes):
    a, b, _ = nodes
    for rel in ("tls/cert.pem", "tls/key.pem", "srs.secret"):
        assert (a.path / "conf" / rel).read_bytes() == (b.path / "conf" / rel).read_bytes()
    keys_a = sorted(p.relative_to(a.path) for p in (a.path / "conf" / "dkim").rglob("*"))
    keys_b = sorted(p.relative_to(b.path) for p in (b.path / "conf" / "dkim").rglob("*"))
    assert keys_a and keys_a == keys_b
    assert 'hostname = "b.example.test"' in (b.path / "conf" / "coremail.toml").read_text()


def test_idle_on_b_sees_delivery_through_a_within_a_second(nodes):
    a, b, _ = nodes
    m = imaplib.IMAP4("127.0.0.1", b.ports["imap"], timeout=30)
    try:
        m.login(ANN, ANN_PW)
        _, data = m.select("INBOX")
        before = int(data[0])
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        assert m.readline().startswith(b"+")
        time.sleep(0.3)     # the listener is up once a session idles
        t0 = time.monotonic()
        send(a, ANN, "idle-1@example.net")
        sent = time.monotonic()
        m.sock.settimeout(5)
        line = m.readline()
        seen = time.monotonic()
        assert re.match(rb"\* (\d+) EXISTS", line), line
        assert int(line.split()[1]) == before + 1
        assert seen - sent < 1.0, f"IDLE woke {seen - sent:.3f}s after the 250 ({sent - t0:.3f}s SMTP)"
        m.send(b"DONE\r\n")
        while not m.readline().startswith(tag):
            pass
    finally:
        m.logout()


def _pop3_login(node, user, pw, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    s = socket.create_connection(("127.0.0.1", node.ports["pop3"]), timeout=30,
                                 source_address=(source, 0))
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(f"USER {user}\r\n".encode())
    f.readline()
    s.sendall(f"PASS {pw}\r\n".encode())
    return s, f.readline()


def test_pop3_session_on_a_locks_the_maildrop_against_b(nodes):
    a, b, _ = nodes
    held, reply = _pop3_login(a, ANN, ANN_PW)
    try:
        assert reply.startswith(b"+OK"), reply
        other, reply = _pop3_login(b, ANN, ANN_PW)
        other.close()
        assert reply.startswith(b"-ERR [IN-USE]"), reply
    finally:
        held.sendall(b"QUIT\r\n")
        held.recv(100)
        held.close()
    # released at QUIT: B gets it now (within its wait for the lock)
    s, reply = _pop3_login(b, ANN, ANN_PW)
    s.sendall(b"QUIT\r\n")
    s.close()
    assert reply.startswith(b"+OK"), reply


def test_failed_logins_on_a_count_on_b(nodes):
    a, b, _ = nodes
    attacker = "127.0.0.9"
    for _ in range(3):
        s, reply = _pop3_login(a, BOB, "wrong-password", source=attacker)
        s.close()
        assert reply.startswith(b"-ERR [AUTH]"), reply
    # the right password from that address is refused on the other node
    s, reply = _pop3_login(b, BOB, BOB_PW, source=attacker)
    s.close()
    assert reply.startswith(b"-ERR [LOGIN-DELAY]"), reply
    with imaplib.IMAP4("127.0.0.1", b.ports["imap"], timeout=30) as m:
        m.login(BOB, BOB_PW)     # other addresses are not affected


def test_webadmin_services_page_shows_every_node(nodes, page):
    """Signed in on A, the same browser session is good on B (the sessions
    are rows of the shared store; a cookie for 127.0.0.1 goes to both ports)."""
    a, b, _ = nodes
    page.goto(f"http://127.0.0.1:{a.ports['http']}/webadmin/")
    page.get_by_label("Email").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/webadmin/**")
    page.goto(f"http://127.0.0.1:{b.ports['http']}/webadmin/services")
    shot(page, "webadmin-nodes")
    nodes_table = page.locator("table.nodes")
    assert nodes_table.count() == 1, page.content()[:3000]
    text = nodes_table.inner_text()
    assert "a.example.test" in text and "b.example.test" in text
    row = page.locator("tr", has_text="a.example.test")
    for svc in ("smtp", "pop3", "imap", "deliveragent", "web"):
        assert f"{svc}: running" in row.inner_text()
    assert "This node is b.example.test." in page.locator("main").inner_text()
    assert [e for e in page.errors if not e.startswith("Failed to load resource")] == []


@pytest.mark.skipif(not HAVE_SINK, reason="needs smtp-sink (postfix package)")
def test_kill_9_of_a_with_mail_queued_b_delivers_all_once(nodes):
    a, b, sink = nodes
    n = 10
    stop = b.coremail("stop", "deliveragent")   # only A's agent has it at first
    assert stop.returncode == 0, stop.stderr
    ids = [f"queued-{i}@example.test" for i in range(n)]
    submit(a, [(f"r{i}@far.example", msgid) for i, msgid in enumerate(ids)])
    # A's agent tried each once against the remote that is down
    wait_for(lambda: a.log("deliveragent").count("result=deferred") >= n, 30,
             "A's deferred attempts")
    killed = a.kill_9()
    assert killed
    sink.start()
    start = b.coremail("start", "deliveragent")
    assert start.returncode == 0, start.stdout + start.stderr
    wait_for(lambda: len(sink.files()) >= n, 60, "every message at the remote")
    time.sleep(1.0)     # anything sent twice would arrive by now
    got = collections.Counter(sink.message_ids())
    assert set(got) == {f"<{i}>" for i in ids}, "a message was lost"
    assert all(v == 1 for v in got.values()), f"sent twice: {[k for k, v in got.items() if v > 1]}"
    q = b.coremail("queue", "list")
    assert q.returncode == 0 and "the queue is empty" in q.stdout, q.stdout
