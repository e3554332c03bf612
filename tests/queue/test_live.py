"""The deliveragent inside the real `coremail start` (every service on free
loopback ports), fed by real SMTP in: Postfix relaying into our SMTP port,
forwards and aliases leaving through smtp-sink, a forwarding loop that runs
through a remote Postfix and back, and `coremail restart deliveragent` in
the middle of a queue to a slow peer.

Peers share one port number on different loopback addresses, since
delivery.smtp_port is one setting: Postfix for loop.test (and as the relay
into us) on 127.0.0.1 (Postfix listens only on an address an interface
has), smtp-sink for far.test on 127.0.0.2, a slow one for slow.test on
127.0.0.3.
"""
from __future__ import annotations

import collections
import re
import smtplib
import time

import pytest

from coremail.config import load_settings
from coremail.store import open_store
from tests.queue.conftest import message, needs_postfix
from tests.support.dnsserver import ZoneServer
from tests.support.home import make_home
from tests.support.peers import PostfixMX, Sink, free_port


def outside(raw: bytes) -> bytes:
    """The message as mail from another domain: port 25's checks put mail
    claiming our own domain from outside, or without a Date, into Junk."""
    return raw.replace(b"From: Sender <sender@example.test>\r\n",
                       b"From: Someone <someone@far.test>\r\n"
                       b"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n", 1)

pytestmark = needs_postfix


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Live:
    def __init__(self, tmp):
        self.port = free_port()
        self.dns = ZoneServer(default_ttl=1).__enter__()
        for name, ip in (("far.test", "127.0.0.2"), ("slow.test", "127.0.0.3"),
                         ("loop.test", "127.0.0.1")):
            self.dns.mx(name, (10, f"mx.{name}"))
            self.dns.a(f"mx.{name}", ip)
        self.sink = Sink(ip="127.0.0.2", port=self.port).start()
        # DATA answered after 1 s: a queue that takes a while to drain.
        self.slow = Sink(ip="127.0.0.3", port=self.port, options=("-w", "1")).start()
        self.home = make_home(tmp / "home", workers=1)
        smtp = self.home.ports["smtp"]
        self.postfix = PostfixMX(domain="loop.test", users=[], ip="127.0.0.1", port=self.port,
                                 extra={"relayhost": f"[127.0.0.1]:{smtp}",
                                        "default_transport": "smtp", "relay_transport": "smtp",
                                        "virtual_mailbox_domains": "",
                                        "virtual_alias_domains": "loop.test",
                                        "smtp_tls_security_level": "none"})
        self.postfix.conf.mkdir(parents=True, exist_ok=True)
        # x@loop.test is sent straight back to a@example.test, who forwards to it.
        (self.postfix.conf / "valias").write_text("x@loop.test a@example.test\n")
        self.postfix.extra["virtual_alias_maps"] = f"texthash:{self.postfix.conf / 'valias'}"
        self.postfix.start()
        for key, value in (("delivery.nameservers", f'["{self.dns.nameserver}"]'),
                           ("delivery.smtp_port", str(self.port)),
                           ("delivery.retry_intervals", '["1s"]'),
                           ("delivery.per_domain_concurrency", "2")):
            self.home.coremail("config", "set", key, value, check=True)
        r = self.home.coremail("start")
        assert r.returncode == 0, r.stdout + r.stderr
        self.store = open_store(self.home.path, load_settings(self.home.path))

    def close(self) -> None:
        self.home.coremail("shutdown", timeout=60)
        self.store.close()
        self.postfix.stop()
        for s in (self.sink, self.slow):
            s.stop()
            s.remove()
        self.dns.__exit__(None, None, None)

    def send(self, sender: str, rcpts: list[str], data: bytes, port: int | None = None,
             host: str = "127.0.0.1") -> None:
        with smtplib.SMTP(host, port or self.home.ports["smtp"], timeout=30) as s:
            s.sendmail(sender, rcpts, data)

    def inbox(self, address: str) -> list[bytes]:
        user = self.store.get_user(address)
        folder = self.store.get_folder(user.id, "INBOX")
        return [self.store.blobs.read(m.blob_id) for m in self.store.list_messages(folder.id)]

    def drained(self, timeout: float = 30) -> None:
        wait_for(lambda: not self.store.queue_list(), timeout, "an empty queue")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    lv = Live(tmp_path_factory.mktemp("live"))
    try:
        yield lv
    finally:
        lv.close()


def test_postfix_relays_into_our_smtp_port(live):
    live.home.userutil("add", "inbound@example.test", "--password", "pw-123456", check=True)
    live.send("someone@far.test", ["inbound@example.test"],
              outside(message("through postfix", msgid="<relayed-1@far.test>")),
              host=live.postfix.ip, port=live.postfix.port)
    try:
        wait_for(lambda: live.inbox("inbound@example.test"), 30, "the relayed message")
    except AssertionError:
        raise AssertionError(live.postfix.log()[-3000:]) from None
    got = live.inbox("inbound@example.test")[0]
    assert b"Message-ID: <relayed-1@far.test>" in got
    assert b"by mx.loop.test" in got  # Postfix's own Received line: it really went through


def test_forward_with_and_without_keep_and_alias_through_smtp(live):
    for user in ("keeper", "mover"):
        live.home.userutil("add", f"{user}@example.test", "--password", "pw-123456", check=True)
    live.home.userutil("forward", "keeper@example.test", "--to", "k@far.test", "--keep",
                       check=True)
    live.home.userutil("forward", "mover@example.test", "--to", "m@far.test", check=True)
    live.home.userutil("alias", "add", "team@example.test", "t@far.test", check=True)
    for rcpt, mid in (("keeper", "<fk@x>"), ("mover", "<fm@x>"), ("team", "<ft@x>")):
        live.send("someone@far.test", [f"{rcpt}@example.test"], outside(message(msgid=mid)))
    live.drained()
    wait_for(lambda: {"<fk@x>", "<fm@x>", "<ft@x>"} <= set(live.sink.message_ids()), 10,
             "the forwarded copies at the sink")
    ids = collections.Counter(live.sink.message_ids())
    assert ids["<fk@x>"] == ids["<fm@x>"] == ids["<ft@x>"] == 1
    relayed = [p.read_bytes() for p in live.sink.files() if b"<fm@x>" in p.read_bytes()]
    assert relayed and not any(re.search(rb"(?im)^Return-Path:", m) for m in relayed), \
        "a relayed copy must not carry our Return-Path (RFC 5321 4.4)"
    assert [b"<fk@x>" in m for m in live.inbox("keeper@example.test")] == [True]
    assert live.inbox("mover@example.test") == []
    log = live.home.log("deliveragent", until="rcpt=t@far.test")
    assert "rcpt=k@far.test" in log and "rcpt=t@far.test" in log


def test_forwarding_loop_through_a_remote_mx_is_bounced(live):
    live.home.userutil("add", "a@example.test", "--password", "pw-123456", check=True)
    live.home.userutil("forward", "a@example.test", "--to", "x@loop.test", check=True)
    before = set(live.sink.files())
    # Arriving with 24 hops already (a long way behind it), so that a few
    # rounds (two hops each: us, then Postfix) pass the limit of 30.
    hops = b"".join(b"Received: from h%d by h%d; Tue, 1 Jan 2030 00:00:00 +0000\r\n"
                    % (i, i) for i in range(24))
    live.send("looper@far.test", ["a@example.test"], message(
        "round and round", msgid="<loop-1@far.test>", extra=hops))

    def dsn() -> list[bytes]:
        return [p.read_bytes() for p in set(live.sink.files()) - before
                if b"multipart/report" in p.read_bytes()]
    try:
        wait_for(dsn, 60, "the loop's DSN at the sender's MX")
    except AssertionError:
        raise AssertionError(live.home.log("deliveragent")[-2500:] + live.home.log("smtp")[-1500:]
                             + live.postfix.log()[-2500:]) from None
    live.drained()
    time.sleep(1.0)  # nothing more may come round
    reports = dsn()
    assert len(reports) == 1
    text = " ".join(reports[0].decode().split())
    assert "Status: 5.4.6" in text and "Message-ID: <loop-1@far.test>" in text
    # It went round through Postfix and back, and stopped: our bounce came first.
    passes = live.postfix.log().count("to=<x@loop.test>")
    assert 2 <= passes <= 5
    assert "queue.bounced" in live.home.log("deliveragent", until="queue.bounced")


def test_restart_deliveragent_mid_queue_loses_and_repeats_nothing(live):
    n = 12
    ids = [f"<slow-{i}@example.test>" for i in range(n)]
    live.home.userutil("add", "slowsender@example.test", "--password", "pw-123456",
                       check=True)
    with smtplib.SMTP("127.0.0.1", live.home.ports["submission"], timeout=30) as s:
        s.starttls()
        s.login("slowsender@example.test", "pw-123456")
        for i, mid in enumerate(ids):
            s.sendmail("slowsender@example.test", [f"r{i}@slow.test"],
                       message(msgid=mid).replace(b"sender@example.test",
                                                  b"slowsender@example.test"))
    # Two connections, a second per message: about six seconds of work.
    wait_for(lambda: len(live.slow.files()) >= 3, 20, "the first deliveries")
    r = live.home.coremail("restart", "deliveragent")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(live.slow.files()) < n, "the restart came after the queue had drained"
    live.drained(timeout=60)
    time.sleep(0.7)
    got = collections.Counter(live.slow.message_ids())
    assert set(got) == set(ids)  # nothing lost
    assert max(got.values()) == 1, [k for k, v in got.items() if v > 1]  # nothing twice
    log = live.home.log("deliveragent")
    assert log.count("deliveragent.started") >= 2
