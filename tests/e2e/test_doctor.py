"""`coremail doctor` against the started system and the loopback DNS server:
a missing MX, an MX pointing elsewhere, then everything fixed; a stopped
service; the server's address on a DNSBL; a certificate near its expiry or
for another name; an outbound probe; a queue backlog. Each finding is one
line "ok", "warn" or "fail" in words, and any "fail" makes the exit code 1.
"""
from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path
from types import SimpleNamespace

import pytest

from coremail.config import Settings, load_settings
from coremail.dns import Resolver
from coremail.mail.dkimkeys import list_keys
from coremail.proto.tls import make_self_signed
from coremail.services.doctor_dns import DnsChecks
from coremail.services.settings import set_value
from tests.support.dnsserver import ZoneServer
from tests.support.home import make_home
from tests.support.peers import free_port

DOMAIN = "example.test"
HOST = "mail.example.test"
ANN, ANN_PASSWORD = f"ann@{DOMAIN}", "ann-pass-12345"


class System:
    def __init__(self, home, zone: ZoneServer):
        self.home, self.zone = home, zone

    def doctor(self, *args: str) -> tuple[int, list[str]]:
        r = self.home.coremail("doctor", *args, timeout=120)
        assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
        return r.returncode, r.stdout.splitlines()

    def line(self, lines: list[str], check: str) -> str:
        found = [ln for ln in lines if ln.split(" ", 1)[1].lstrip().startswith(check + ":")]
        assert found, f"no {check!r} line in:\n" + "\n".join(lines)
        return found[0]

    def publish_all(self, dkim: bool = True) -> None:
        z = self.zone
        z.mx(DOMAIN, (10, HOST))
        z.txt(DOMAIN, "v=spf1 mx -all")
        z.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=none")
        for k in list_keys(self.home.path, DOMAIN):
            if dkim:
                self.publish_dkim(k.selector, k.record())
            else:
                z.delete(f"{k.selector}._domainkey.{DOMAIN}")

    def publish_dkim(self, selector: str, record: str) -> None:
        """One TXT record, in 255-octet strings as a zone file has it."""
        parts = [record[i:i + 255] for i in range(0, len(record), 255)]
        self.zone.set(f"{selector}._domainkey.{DOMAIN}", "TXT", '"' + '" "'.join(parts) + '"')


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    zone = ZoneServer().start()
    zone.a(HOST, "127.0.0.1")
    zone.set("1.0.0.127.in-addr.arpa", "PTR", f"{HOST}.")
    home = make_home(Path(tmp_path_factory.mktemp("doctor")) / "home", workers=1)
    for key, value in (("delivery.nameservers", f'["{zone.nameserver}"]'),
                       ("delivery.smtp_port", str(free_port())),   # nothing listens there
                       ("delivery.retry_intervals", '["1h"]')):
        set_value(home.path, key, value)
    home.userutil("add", ANN, "--password", ANN_PASSWORD, check=True)
    r = home.coremail("start")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        yield System(home, zone)
    finally:
        home.coremail("shutdown", timeout=60)
        zone.stop()


def test_missing_mx_then_mx_elsewhere_then_fixed(system):
    code, lines = system.doctor()
    assert code == 1
    mx = system.line(lines, f"mx {DOMAIN}")
    assert mx.startswith("fail") and "example.test has no MX record" in mx
    assert f"to do: publish `{DOMAIN}. MX 10 {HOST}.`" in mx
    assert system.line(lines, f"spf {DOMAIN}").startswith("fail")
    assert system.line(lines, f"dmarc {DOMAIN}").startswith("warn")

    system.zone.mx(DOMAIN, (10, "mx.elsewhere.test"))
    code, lines = system.doctor()
    mx = system.line(lines, f"mx {DOMAIN}")
    assert code == 1 and mx.startswith("fail")
    assert f"the MX of {DOMAIN} points at mx.elsewhere.test, not at this server ({HOST})" in mx

    system.publish_all()
    code, lines = system.doctor()
    text = "\n".join(lines)
    assert code == 0, text
    assert system.line(lines, f"mx {DOMAIN}") == f"ok   mx {DOMAIN}: the MX of {DOMAIN} points at {HOST}"
    assert system.line(lines, "hostname").startswith("ok") and "an address of this server" in text
    ptr = system.line(lines, "ptr 127.0.0.1")
    assert ptr.startswith("ok") and "forward-confirmed" in ptr
    assert system.line(lines, f"spf {DOMAIN}").startswith("ok")
    assert system.line(lines, "dns").startswith("ok")
    for service in ("smtp", "pop3", "imap", "deliveragent", "web"):
        assert system.line(lines, f"service {service}").startswith("ok")
    assert system.line(lines, "port smtp").startswith("ok")
    assert system.line(lines, "disk space").startswith("ok")
    assert system.line(lines, "inodes").startswith("ok")
    assert system.line(lines, "queue") == "ok   queue: the outbound queue is empty"
    assert system.line(lines, "certificate issuer").startswith("warn")   # self-signed at init
    assert lines[-1].endswith("0 failed, 1 warnings")


def test_dkim_records_missing_then_another_key_then_published(system):
    system.publish_all(dkim=False)
    keys = list_keys(system.home.path, DOMAIN)
    assert {k.kind for k in keys if k.active} == {"rsa", "ed25519"}
    code, lines = system.doctor()
    dkim = [ln for ln in lines if f" dkim {DOMAIN}:" in ln]
    assert code == 1 and len(dkim) == len(keys) and all(ln.startswith("fail") for ln in dkim)
    rsa = next(k for k in keys if k.kind == "rsa")
    name = f"{rsa.selector}._domainkey.{DOMAIN}"
    assert any(f"{name} publishes no DKIM key, but selector {rsa.selector} signs mail now: "
               f"receivers cannot verify the signatures of mail from {DOMAIN}" in ln
               and f"to do: publish `{name}." in ln for ln in dkim), dkim
    system.publish_all()
    other = "v=DKIM1; k=rsa; p=" + "A" * 300       # someone else's key at our selector
    system.publish_dkim(rsa.selector, other)
    code, lines = system.doctor()
    bad = [ln for ln in lines if f" dkim {DOMAIN}:" in ln and ln.startswith("fail")]
    assert code == 1 and len(bad) == 1 and "holds another key than the one this server " \
        "signs with" in bad[0] and "replace it" in bad[0]
    system.publish_all()
    code, lines = system.doctor()
    dkim = [ln for ln in lines if f" dkim {DOMAIN}:" in ln]
    assert code == 0 and all(ln.startswith("ok") for ln in dkim), dkim
    assert any(f"{name} publishes this server's RSA 2048 key (signs mail now)" in ln
               for ln in dkim)


def test_a_stopped_service_fails_and_says_how_to_start_it(system):
    system.publish_all()
    system.home.coremail("stop", "pop3", check=True)
    try:
        code, lines = system.doctor()
        pop3 = system.line(lines, "service pop3")
        assert code == 1 and pop3.startswith("fail") and "pop3 is stopped" in pop3
        assert "to do: start it with `coremail start pop3`" in pop3
        assert system.line(lines, "service smtp").startswith("ok")
    finally:
        system.home.coremail("start", "pop3", check=True)


def test_the_servers_address_on_a_dnsbl(system):
    system.zone.a("1.0.0.127.bl.test", "127.0.0.2")
    system.zone.txt("1.0.0.127.bl.test", "listed for sending spam, see bl.test/why")
    want = ("this server's address 127.0.0.1 is listed by bl.test (listed for sending spam, "
            "see bl.test/why)")
    if "antispam" in Settings.model_fields:
        set_value(system.home.path, "antispam.dnsbl", '["bl.test", "clean.test"]')
        code, lines = system.doctor()
        set_value(system.home.path, "antispam.dnsbl", "[]")
        assert code == 1 and want in system.line(lines, "dnsbl bl.test")
        assert system.line(lines, "dnsbl clean.test").startswith("ok")
        return
    # Before the anti-spam settings exist: the same check over a settings object that has them.
    s = load_settings(system.home.path)
    proxy = SimpleNamespace(server=s.server, delivery=s.delivery,
                            antispam=SimpleNamespace(dnsbl=["bl.test", "clean.test"]))
    checks = DnsChecks(proxy, Resolver([system.zone.nameserver]), [DOMAIN])
    found = asyncio.run(checks.run())
    bl = [f for f in found if f.check == "dnsbl bl.test"]
    assert bl and bl[0].status == "fail" and want in bl[0].words
    assert [f.status for f in found if f.check == "dnsbl clean.test"] == ["ok"]


def test_certificate_near_expiry_and_for_another_name(system):
    tls = system.home.path / "conf" / "tls"
    try:
        make_self_signed(tls, HOST, days=3)
        code, lines = system.doctor()
        cert = system.line(lines, "certificate")
        assert code == 1 and cert.startswith("fail") and "expires in 3 day(s)" in cert
        make_self_signed(tls, HOST, days=20)
        code, lines = system.doctor()
        assert system.line(lines, "certificate").startswith("warn")
        make_self_signed(tls, "other.test")
        code, lines = system.doctor()
        name = system.line(lines, "certificate name")
        assert code == 1 and name.startswith("fail") and f"not for {HOST}" in name
    finally:
        make_self_signed(tls, HOST)


def test_outbound_probe(system):
    code, lines = system.doctor("--probe", f"127.0.0.1:{system.home.ports['smtp']}")
    assert system.line(lines, "probe").startswith("ok") and "answered: 220" in lines[-2]
    dead = free_port()
    code, lines = system.doctor("--probe", f"127.0.0.1:{dead}")
    probe = system.line(lines, "probe")
    assert code == 1 and probe.startswith("fail") and f"port {dead}" in probe
    assert "delivery.relayhost" in probe


def test_queue_backlog_names_the_oldest_and_its_error(system):
    """Last in this module: it leaves the queue full."""
    system.publish_all()
    system.zone.mx("down.test", (10, "mx.down.test"))
    system.zone.a("mx.down.test", "127.0.0.1")
    with smtplib.SMTP("127.0.0.1", system.home.ports["submission"], timeout=60) as s:
        s.ehlo("client.test")
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo("client.test")
        s.login(ANN, ANN_PASSWORD)
        for i in range(100):
            s.sendmail(ANN, [f"x{i}@down.test"], f"Subject: {i}\r\n\r\nhi\r\n".encode())
    import time
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        code, lines = system.doctor()
        q = system.line(lines, "queue")
        if q.startswith("warn") and "could not connect" in q:
            break
        time.sleep(1)
    assert q.startswith("warn") and "100 message(s) queued, the oldest" in q, q
    assert "could not connect to the recipient's mail server" in q
    assert "`coremail queue flush`" in q
