"""`coremail trace` through the started system: real SMTP clients, the
deliveragent against a remote that is down and then up (Postfix's
smtp-sink) and a remote that refuses with 550 (a private Postfix), the
loopback DNS server for their MX records. Every story is found by queue id,
Message-ID and address, and told in words.
"""
from __future__ import annotations

import re
import smtplib
import ssl
import time
from pathlib import Path

import pytest

from coremail.config import load_settings
from coremail.proto.tls import make_self_signed
from coremail.services.settings import set_value
from coremail.services.trace import MessageTrace, render_all
from coremail.store import open_store
from tests.support.dnsserver import ZoneServer
from tests.support.home import make_home
from tests.support.peers import HAVE_POSTFIX, HAVE_SINK, PostfixMX, Sink, free_port

pytestmark = pytest.mark.skipif(not (HAVE_POSTFIX and HAVE_SINK),
                                reason="needs root, Postfix and smtp-sink")

DOMAIN = "example.test"
ANN = f"ann@{DOMAIN}"
ANN_PASSWORD = "ann-pass-12345"
FWD = f"fwd@{DOMAIN}"


def _port_free_on(*ips: str) -> int:
    import socket
    while True:
        port = free_port(ips[0])
        try:
            for ip in ips[1:]:
                with socket.socket() as s:
                    s.bind((ip, port))
            return port
        except OSError:
            continue


class System:
    def __init__(self, home, zone: ZoneServer, sink: Sink):
        self.home, self.zone, self.sink = home, zone, sink

    def send(self, sender: str, rcpts: list[str], msgid: str, *, submit: bool = False
             ) -> tuple[str, dict]:
        """One message over port 25 (or submitted by ann: over 587 with STARTTLS and
        AUTH); its queue id ("" if refused) and the refusals."""
        data = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: test\r\n"
                f"Message-ID: <{msgid}>\r\n\r\nhello\r\n").encode()
        port = self.home.ports["submission" if submit else "smtp"]
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("client.example.net")
            if submit:
                s.starttls(context=ssl._create_unverified_context())
                s.ehlo("client.example.net")
                s.login(ANN, ANN_PASSWORD)
            code, _ = s.mail(sender)
            refused = {}
            for r in rcpts:
                c, text = s.rcpt(r)
                if c >= 400:
                    refused[r] = (c, text.decode())
            if len(refused) == len(rcpts):
                s.rset()
                return "", refused
            code, text = s.data(data)
        if code != 250:
            return "", {"DATA": (code, text.decode())}
        return re.search(r"queued as (\S+)", text.decode()).group(1), refused

    def trace(self, query: str, *args: str) -> str:
        """`coremail trace` itself."""
        r = self.home.coremail("trace", query, *args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def story(self, query: str) -> str:
        """The same words without a process per call (services.trace over the home's store)."""
        store = open_store(self.home.path, load_settings(self.home.path))
        try:
            return render_all(MessageTrace(store).find(query), query) + "\n"
        finally:
            store.close()

    def until(self, query: str, *words: str, timeout: float = 30.0, cli: bool = False) -> str:
        """The trace of ``query`` once it holds every one of ``words``; with
        ``cli``, the final words are those `coremail trace` prints."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.story(query)
            if all(w in out for w in words) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if cli:
            out = self.trace(query)
        missing = [w for w in words if w not in out]
        assert not missing, f"{missing} not in:\n{out}"
        return out


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("trace")
    port = _port_free_on("127.0.0.2", "127.0.0.1")
    sink = Sink(ip="127.0.0.2", port=port)          # down at first: "down.test" and "fwd.test"
    mx = PostfixMX(domain="refuse.test", users=["bob"], ip="127.0.0.1", port=port)
    # This one offers STARTTLS (the attempt then says "over TLS"); smtp-sink does not.
    cert, key = make_self_signed(mx.root / "tls", "mx.refuse.test")
    for f in (mx.root / "tls", cert, key):
        f.chmod(0o755 if f.is_dir() else 0o644)
    mx.extra = {"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": str(cert),
                "smtpd_tls_key_file": str(key)}
    mx.start()
    zone = ZoneServer().start()
    for domain, ip in (("down.test", "127.0.0.2"), ("fwd.test", "127.0.0.2"),
                       ("refuse.test", "127.0.0.1")):
        zone.mx(domain, (10, f"mx.{domain}"), ttl=1)
        zone.a(f"mx.{domain}", ip, ttl=1)
    home = make_home(Path(root) / "home", workers=1)
    for key, value in (("delivery.nameservers", f'["{zone.nameserver}"]'),
                       ("delivery.smtp_port", str(port)),
                       ("delivery.retry_intervals", '["1h"]'),
                       ("limits.max_message_size", '"20K"')):
        set_value(home.path, key, value)
    home.userutil("add", ANN, "--password", ANN_PASSWORD, check=True)
    home.userutil("add", FWD, "--password", "fwd-pass-12345", check=True)
    home.userutil("forward", FWD, "--to", "far@fwd.test", check=True)
    r = home.coremail("start")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        yield System(home, zone, sink)
    finally:
        home.coremail("shutdown", timeout=60)
        sink.stop()
        sink.remove()
        mx.stop()
        zone.stop()


def test_local_delivery_found_by_qid_message_id_and_address(system):
    qid, refused = system.send("x@remote.test", [ANN], "local-1@remote.test")
    assert qid and not refused
    for i, query in enumerate((qid, qid.lower(), "<local-1@remote.test>", "local-1@remote.test", ANN,
                  "X@Remote.Test")):
        out = system.until(query, f"Message {qid}", "Message-ID <local-1@remote.test>",
                           "received from client.example.net [127.0.0.1] on port 25 (MX), "
                           "without TLS, not logged in: <x@remote.test> to <ann@example.test>",
                           f"delivered to the mailbox of {ANN}, folder INBOX", cli=not i)
    assert out.index(f"Message {qid}") < out.index("received") < out.index("delivered")


def test_refused_recipient_and_too_large_are_found_without_a_queue_id(system):
    qid, refused = system.send("y@remote.test", ["nobody@example.test"], "none@remote.test")
    assert not qid and refused["nobody@example.test"][0] == 550
    out = system.until("nobody@example.test", "Refused before it was accepted (no queue id)",
                       "refused the recipient <nobody@example.test> of mail from <y@remote.test> at RCPT TO: we replied "
                       "550 5.1.1 no mailbox here by the name <nobody@example.test>",
                       "from client.example.net [127.0.0.1]", cli=True)
    assert "y@remote.test" in system.until("y@remote.test", "RCPT TO")
    # Too large: smtplib declares SIZE, so MAIL FROM is refused; then without SIZE, at DATA.
    with smtplib.SMTP("127.0.0.1", system.home.ports["smtp"], timeout=30) as s:
        s.ehlo("client.example.net")
        assert s.mail("big@remote.test", ["SIZE=40000"])[0] == 552
        s.rset()
        assert s.mail("big2@remote.test")[0] == 250
        assert s.rcpt(ANN)[0] == 250
        code, _ = s.data(b"Message-ID: <big-2@remote.test>\r\nSubject: big\r\n\r\n"
                         + b"x" * 76 + b"\r\n" * 300 + (b"y" * 70 + b"\r\n") * 400)
        assert code == 552
    system.until("big@remote.test", "refused at MAIL FROM <big@remote.test> from "
                 "client.example.net [127.0.0.1]", "we replied 552 5.3.4")
    for i, query in enumerate(("big-2@remote.test", "big2@remote.test", ANN)):
        system.until(query, "Message-ID <big-2@remote.test>",
                     "refused at the end of DATA from client.example.net",
                     "we replied 552 5.3.4 the message is", cli=not i)
    assert "Refused before it was accepted" in out


def test_down_remote_queued_attempts_then_delivered_after_flush(system):
    qid, _ = system.send(ANN, ["a@down.test"], "down-1@example.test", submit=True)
    words = ("received from client.example.net [127.0.0.1] on the submission port, with TLS, "
             f"logged in as {ANN}", "queued for delivery to a@down.test",
             "attempt 1 for <a@down.test> via mx.down.test [127.0.0.2]: not delivered yet:",
             "could not connect to", "still queued for <a@down.test>: next try in 60 min")
    for i, query in enumerate((qid, "down-1@example.test", "a@down.test")):
        system.until(query, *words, cli=not i)
    system.sink.start()
    r = system.home.coremail("queue", "flush", check=True)
    assert "1 message(s)" in r.stdout
    out = system.until(qid, "delivered to <a@down.test> by mx.down.test [127.0.0.2], without "
                       "TLS, which replied 250")   # smtp-sink offers no STARTTLS
    assert out.index("attempt 1") < out.index("which replied 250")


def test_remote_550_bounces_to_the_sender(system):
    qid, _ = system.send(ANN, ["nobody@refuse.test"], "bounce-1@example.test", submit=True)
    for i, query in enumerate((qid, "<bounce-1@example.test>", "nobody@refuse.test", ANN)):
        out = system.until(query, "attempt 1 for <nobody@refuse.test> via mx.refuse.test "
                           "[127.0.0.1], over TLS: refused for good: 550 5.1.1",
                           "bounced: <nobody@refuse.test> could not be delivered; a report "
                           f"(DSN) was sent to <{ANN}> as", cli=not i)
    bounce = re.search(r"a report \(DSN\) was sent to <\S+> as (\S+)", out).group(1)
    # The report's own story: stored in ann's INBOX by the deliveragent.
    system.until(bounce, f"Message {bounce}", f"delivered to the mailbox of {ANN}")


def test_forward_without_a_copy(system):
    system.sink.start() if system.sink.proc is None else None
    qid, _ = system.send("z@remote.test", [FWD], "fwd-1@remote.test")
    for i, query in enumerate((qid, "fwd-1@remote.test", FWD, "far@fwd.test")):
        out = system.until(query, f"<{FWD}> forwarded to far@fwd.test (no copy kept)",
                           "queued for delivery to far@fwd.test",
                           "delivered to <far@fwd.test> by mx.fwd.test [127.0.0.2]", cli=not i)
    assert "delivered to the mailbox" not in out


def test_queue_delete_names_who_and_an_unknown_query_says_so(system):
    system.sink.stop()
    qid, _ = system.send(ANN, ["b@down.test"], "del-1@example.test", submit=True)
    system.until(qid, "still queued for <b@down.test>")
    system.home.coremail("queue", "delete", qid, check=True)
    system.until(qid, "deleted from the queue by root with `coremail queue delete` (no "
                 "bounce sent); it was still waiting for b@down.test", cli=True)
    out = system.trace("never-seen@nowhere.test")
    assert "nothing recorded for 'never-seen@nowhere.test'" in out
    assert "nothing recorded" in system.trace(ANN, "--since", "0s")
    bad = system.home.coremail("trace", ANN, "--since", "soon")
    assert bad.returncode == 2 and "--since" in bad.stderr
