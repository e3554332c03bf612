"""Forwarding with SRS, end to end under `coremail start`: mail from
origin.test to a user who forwards to far.test leaves with an SRS0 envelope
sender of ours, passes SPF at far.test (checked here with our SPF verifier
over the records `coremail dns` prints) where the original sender would
fail, carries our DKIM signature, and a bounce far.test sends to that SRS
address is delivered on to the original sender. A forged SRS address is
refused. Peers: smtp-sink for far.test (127.0.0.2) and origin.test (127.0.0.3)."""
from __future__ import annotations

import re
import smtplib
import time

import dns.resolver
import pytest

from coremail.dns.resolver import Answer, Status
from coremail.pipeline.senderauth.spfcheck import check_spf
from coremail.services.dnsrecords import spf_value
from tests.queue.conftest import needs_sink
from tests.support.dnsserver import ZoneServer
from tests.support.home import make_home
from tests.support.peers import Sink, free_port

pytestmark = needs_sink


class ZoneDns:
    """A blocking stand-in for ThreadDns: asks the test zone directly."""

    def __init__(self, zone: ZoneServer):
        self.res = dns.resolver.Resolver(configure=False)
        self.res.nameservers, self.res.port = ["127.0.0.1"], zone.port
        self.failed: set[str] = set()

    def lookup(self, name: str, rdtype: str) -> Answer:
        try:
            got = self.res.resolve(name, rdtype, lifetime=5)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return Answer(name, rdtype, Status.NODATA)
        if rdtype == "TXT":
            return Answer(name, rdtype, Status.OK,
                          tuple(b"".join(r.strings).decode() for r in got))
        return Answer(name, rdtype, Status.OK, tuple(r.to_text() for r in got))


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    port = free_port()
    zone = ZoneServer(default_ttl=1).start()
    for name, ip in (("far.test", "127.0.0.2"), ("origin.test", "127.0.0.3")):
        zone.mx(name, (10, f"mx.{name}"))
        zone.a(f"mx.{name}", ip)
    zone.txt("origin.test", "v=spf1 ip4:127.0.0.9 -all")
    zone.txt("example.test", spf_value("127.0.0.1"))
    far = Sink(ip="127.0.0.2", port=port).start()
    origin = Sink(ip="127.0.0.3", port=port).start()
    home = make_home(tmp_path_factory.mktemp("srs") / "home", workers=1)
    for key, value in (("delivery.nameservers", f'["{zone.nameserver}"]'),
                       ("delivery.smtp_port", str(port)),
                       ("delivery.retry_intervals", '["1s"]')):
        home.coremail("config", "set", key, value, check=True)
    home.userutil("add", "fwd@example.test", "--password", "pw-123456", check=True)
    home.userutil("forward", "fwd@example.test", "--to", "x@far.test", check=True)
    r = home.coremail("start")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        yield home, zone, far, origin
    finally:
        home.coremail("shutdown", timeout=60)
        for s in (far, origin):
            s.stop()
            s.remove()
        zone.stop()


def mail_from(dump: bytes) -> str:
    m = re.search(rb"(?m)^X-Mail-Args: ?<?([^>\s]*)>?", dump)
    assert m, dump[:500]
    return m.group(1).decode()


def test_forward_gets_srs_passes_spf_and_its_bounce_returns(world):
    home, zone, far, origin = world
    body = (b"From: Someone <someone@origin.test>\r\nTo: fwd@example.test\r\n"
            b"Subject: to be forwarded\r\nMessage-ID: <srs-1@origin.test>\r\n\r\nHi.\r\n")
    with smtplib.SMTP("127.0.0.1", home.ports["smtp"], timeout=20,
                      source_address=("127.0.0.9", 0)) as c:
        c.sendmail("someone@origin.test", ["fwd@example.test"], body)
    dumps = wait_for(lambda: [d for d in (p.read_bytes() for p in far.files())
                              if b"Hi." in d], 30, "the forward at far.test")
    dump = dumps[0]
    srs = mail_from(dump)
    assert re.fullmatch(r"SRS0=[^=]{4}=[A-Z2-7]{2}=origin\.test=someone@example\.test", srs), srs
    # SPF at the destination: our address is allowed for example.test ...
    zdns = ZoneDns(zone)
    assert check_spf(zdns, "127.0.0.1", srs, "mail.example.test").result == "pass"
    # ... where the unrewritten sender would have failed.
    assert check_spf(zdns, "127.0.0.1", "someone@origin.test", "mail.example.test").result == "fail"
    assert b"DKIM-Signature:" in dump and b"d=example.test" in dump

    # far.test bounces to the SRS address: the report reaches the original sender.
    report = (b"From: MAILER-DAEMON@mx.far.test\r\nTo: " + srs.encode() + b"\r\n"
              b"Subject: Undelivered Mail Returned to Sender\r\n\r\nx@far.test: no such user\r\n")
    with smtplib.SMTP("127.0.0.1", home.ports["smtp"], timeout=20,
                      source_address=("127.0.0.2", 0)) as c:
        c.sendmail("", [srs], report)
    back = wait_for(lambda: [d for d in (p.read_bytes() for p in origin.files())
                             if b"no such user" in d], 30, "the bounce at origin.test")
    assert b"Undelivered Mail Returned to Sender" in back[0]
    assert re.search(rb"(?m)^X-Rcpt-Args: ?<?someone@origin\.test", back[0]), back[0][:400]


def test_forged_srs_address_is_refused(world):
    home = world[0]
    with smtplib.SMTP("127.0.0.1", home.ports["smtp"], timeout=20) as c:
        c.ehlo("mx.far.test")
        c.mail("")
        code, text = c.rcpt("SRS0=abcd=AB=origin.test=someone@example.test")
    assert code == 550 and b"5.7.1" in text and b"SRS" in text, text
