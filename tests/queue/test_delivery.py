"""The deliveragent against real peers on loopback: a private Postfix as the
remote MX, Postfix's smtp-sink, and the dnslib DNS server for MX/A records."""
from __future__ import annotations

import asyncio

import pytest

import subprocess
import sys
from pathlib import Path
from tests.queue.conftest import message, needs_postfix, needs_sink
from tests.support.peers import PostfixMX, Sink, free_port


def coremail(home, *args: str) -> str:
    exe = Path(sys.executable).parent / "coremail"
    return subprocess.run([str(exe), "--home", str(home), *args], capture_output=True,
                          text=True, check=True, timeout=60).stdout


@pytest.fixture
def remote_mx(tmp_path):
    mx = PostfixMX(tmp_path / "postfix", domain="remote.test", users=["bob", "carol"]).start()
    yield mx
    mx.stop()


def point_mx(dns_server, domain: str, ip: str = "127.0.0.1", ttl: int = 1) -> None:
    dns_server.mx(domain, (10, f"mx.{domain}"), ttl=ttl)
    dns_server.a(f"mx.{domain}", ip, ttl=ttl)


async def use_dns(harness, dns_server, port: int) -> None:
    harness.set("delivery.nameservers", f'["{dns_server.nameserver}"]')
    harness.set("delivery.smtp_port", str(port))


@needs_postfix
async def test_remote_delivery_and_unknown_user_bounce(harness, dns_server, remote_mx):
    point_mx(dns_server, "remote.test")
    await use_dns(harness, dns_server, remote_mx.port)
    await harness.start()
    qid = harness.queue(message("to bob and nobody"), "sender@example.test",
                        ["bob@remote.test", "nobody@remote.test"])
    await harness.drained()
    await harness.until(lambda: len(remote_mx.messages("bob")) == 1, what="bob's copy")
    assert b"Subject: to bob and nobody" in remote_mx.messages("bob")[0]
    sent = [e for e in harness.events("delivery") if e["result"] == "sent"]
    assert sent[0]["qid"] == qid and sent[0]["host"] == "mx.remote.test"
    assert sent[0]["ip"] == "127.0.0.1" and sent[0]["reply"].startswith("250")
    # One DSN, in the local sender's INBOX, with the words and the original headers.
    bounces = harness.inbox("sender@example.test")
    assert len(bounces) == 1
    dsn = bounces[0].decode()
    assert "multipart/report" in dsn and "Status: 5.1.1" in dsn
    assert "The address does not exist" in dsn
    assert "nobody@remote.test" in dsn and "Subject: to bob and nobody" in dsn
    assert "bob@remote.test" not in dsn.split("rfc822-headers")[0]


@needs_postfix
async def test_opportunistic_starttls_and_size(harness, dns_server, tmp_path):
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("mx.tls.test")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "mx.pem"))
    mx = PostfixMX(tmp_path / "pf", domain="tls.test", users=["bob"], extra={
        "smtpd_tls_security_level": "may", "smtpd_tls_chain_files": str(tmp_path / "mx.pem"),
        "message_size_limit": "20000", "smtpd_tls_received_header": "yes"}).start()
    try:
        point_mx(dns_server, "tls.test")
        await use_dns(harness, dns_server, mx.port)
        await harness.start()
        harness.queue(message("small"), "sender@example.test", ["bob@tls.test"])
        harness.queue(message("big", body=b"x" * 998 + b"\r\n" * 30 + b"y" * 30000 + b"\r\n"),
                      "sender@example.test", ["bob@tls.test"])
        await harness.drained()
        await harness.until(lambda: len(mx.messages("bob")) == 1, what="the small message")
        assert b"using TLS" in mx.messages("bob")[0]  # Postfix's Received notes the TLS
        dsn = harness.inbox("sender@example.test")[0].decode()
        assert "Status: 5.3.4" in dsn and "bigger than the receiving mail server" in dsn
    finally:
        mx.stop()


async def test_nxdomain_bounces_at_once_with_a_hint(harness, dns_server):
    await use_dns(harness, dns_server, 25)
    await harness.start()
    harness.queue(message("to a typo"), "sender@example.test", ["friend@sian.com"])
    await harness.drained()
    dsn = harness.inbox("sender@example.test")[0].decode()
    assert "Status: 5.1.2" in dsn and "did you mean sina.com" in dsn


async def test_null_mx_bounces_and_null_sender_never_bounced(harness, dns_server):
    dns_server.null_mx("nomail.test")
    await use_dns(harness, dns_server, 25)
    await harness.start()
    harness.queue(message("report"), "", ["x@nomail.test"], kind="bounce")
    harness.queue(message("real"), "sender@example.test", ["x@nomail.test"])
    await harness.drained()
    dsns = harness.inbox("sender@example.test")
    assert len(dsns) == 1 and "Status: 5.1.10" in dsns[0].decode()


@needs_sink
async def test_remote_down_then_up_delivered_once_after_flush(harness, dns_server, tmp_path):
    sink = Sink(tmp_path / "sink")
    point_mx(dns_server, "down.test")
    await use_dns(harness, dns_server, sink.port)
    harness.set("delivery.retry_intervals", '["1h"]')
    await harness.start()
    qid = harness.queue(message(msgid="<down-1@example.test>"), "sender@example.test",
                        ["a@down.test"])
    await harness.until(lambda: harness.store.queue_get(qid).attempts == 1, what="a try")
    entry = harness.store.queue_get(qid)
    assert entry.last_error.startswith("4.4.1") and "connection refused" in entry.last_error
    listed = coremail(harness.home, "queue", "list")
    assert qid in listed and "could not connect to the recipient's mail server" in listed
    assert "connection refused" in listed and "next try in 59m" in listed
    sink.start()
    try:
        await asyncio.sleep(1.5)
        assert harness.store.queue_get(qid) is not None  # not before the flush (retry in 1h)
        assert "1 message(s)" in coremail(harness.home, "queue", "flush")
        await harness.drained()
        await asyncio.sleep(0.5)
        assert sink.message_ids() == ["<down-1@example.test>"]
    finally:
        sink.stop()


@needs_sink
async def test_mx_change_is_used_without_restart(harness, dns_server, tmp_path):
    port = free_port()
    one = Sink(tmp_path / "one", ip="127.0.0.1", port=port).start()
    two = Sink(tmp_path / "two", ip="127.0.0.2", port=port).start()
    try:
        point_mx(dns_server, "moving.test", "127.0.0.1", ttl=1)
        await use_dns(harness, dns_server, port)
        await harness.start()
        harness.queue(message(msgid="<m1@example.test>"), "sender@example.test", ["a@moving.test"])
        await harness.drained()
        dns_server.a("mx.moving.test", "127.0.0.2", ttl=1)
        await asyncio.sleep(1.2)
        harness.queue(message(msgid="<m2@example.test>"), "sender@example.test", ["a@moving.test"])
        await harness.drained()
        await asyncio.sleep(0.3)
        assert one.message_ids() == ["<m1@example.test>"]
        assert two.message_ids() == ["<m2@example.test>"]
    finally:
        one.stop()
        two.stop()


@needs_sink
async def test_expiry_bounces_with_could_not_connect(harness, dns_server):
    point_mx(dns_server, "dead.test")
    await use_dns(harness, dns_server, free_port())
    harness.set("delivery.max_queue_time", '"2s"')
    await harness.start()
    harness.queue(message("never"), "sender@example.test", ["a@dead.test"])
    await harness.drained(timeout=15)
    dsn = " ".join(harness.inbox("sender@example.test")[0].decode().split())
    assert "Status: 4.4.1" in dsn and "Action: failed" in dsn
    assert "could not connect to the recipient's mail server" in dsn


@needs_sink
async def test_forward_keep_and_alias_to_remote(harness, dns_server, tmp_path):
    sink = Sink(tmp_path / "sink").start()
    try:
        point_mx(dns_server, "far.test")
        await use_dns(harness, dns_server, sink.port)
        st = harness.store
        keeper = st.add_user("keeper@example.test", password_hash="x", quota=0)
        mover = st.add_user("mover@example.test", password_hash="x", quota=0)
        st.set_forward(keeper.id, "k@far.test", keep=True)
        st.set_forward(mover.id, "m@far.test", keep=False)
        st.add_alias("team@example.test", "t@far.test")
        await harness.start()
        harness.queue(message(msgid="<k@x>"), "sender@example.test", ["keeper@example.test"])
        harness.queue(message(msgid="<m@x>"), "sender@example.test", ["mover@example.test"])
        harness.queue(message(msgid="<t@x>"), "sender@example.test", ["team@example.test"])
        await harness.drained()
        await asyncio.sleep(0.3)
        assert sorted(sink.message_ids()) == ["<k@x>", "<m@x>", "<t@x>"]
        assert len(harness.inbox("keeper@example.test")) == 1
        assert harness.inbox("mover@example.test") == []
        dumped = b"".join(p.read_bytes() for p in sink.files())
        assert b"Delivered-To: mover@example.test" in dumped
    finally:
        sink.stop()


async def test_forwarding_loops_are_bounced(harness, dns_server):
    st = harness.store
    a = st.add_user("a@example.test", password_hash="x", quota=0)
    b = st.add_user("b@example.test", password_hash="x", quota=0)
    st.set_forward(a.id, "b@example.test", keep=False)
    st.set_forward(b.id, "a@example.test", keep=False)
    await use_dns(harness, dns_server, 25)
    await harness.start()
    hops = b"".join(b"Received: from h%d by h%d; Tue, 1 Jan 2030 00:00:00 +0000\r\n" % (i, i)
                    for i in range(31))
    harness.queue(message("cycle"), "sender@example.test", ["a@example.test"])
    harness.queue(message("many hops", extra=hops), "sender@example.test", ["x@far.test"])
    harness.queue(message("seen", extra=b"Delivered-To: c@example.test\r\n"),
                  "sender@example.test", ["c@example.test"])
    st.add_user("c@example.test", password_hash="x", quota=0)
    await harness.drained()
    dsns = [d.decode() for d in harness.inbox("sender@example.test")]
    assert len(dsns) == 3 and all("Status: 5.4.6" in d for d in dsns)
    assert all("going round in a circle" in " ".join(d.split()) for d in dsns)
    assert harness.inbox("c@example.test") == []


async def test_local_delivery_stores_the_summary_and_logs_the_qid(harness):
    """Mail reaching a local mailbox from the queue (an alias, a bounce) goes
    through the ingest path like SMTP's: the copy has its summary, so IMAP
    never parses it again, and the delivery line carries the queue id."""
    st = harness.store
    amy = st.add_user("amy@example.test", password_hash="x", quota=0)
    await harness.start()
    qid = harness.queue(message("from the queue"), "sender@example.test", ["amy@example.test"])
    await harness.drained()
    [m] = st.list_messages(st.get_folder(amy.id, "INBOX").id, with_meta=True)
    assert m.meta is not None and m.meta["envelope"]["subject"] == "from the queue"
    [ev] = [e for e in harness.events("delivery") if e.get("host") == "local"]
    assert ev["qid"] == qid and ev["result"] == "sent"
