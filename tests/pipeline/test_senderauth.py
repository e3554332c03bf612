"""Inbound SPF, DKIM and DMARC through the real SMTP service on port 25: the
loopback ZoneServer publishes the records, clients connect from distinct
loopback addresses (127.0.0.x), OpenDKIM signs some messages, and what is
stored (Authentication-Results, X-Spam-Status, folder) or refused is read
back."""
from __future__ import annotations

import re
import smtplib
import time

import dkim
import pytest

from coremail.mail.dkimkeys import create_keys, list_keys
from tests.smtpd.conftest import Server
from tests.support.dnsserver import ZoneServer
from tests.support.opendkim import HAVE_OPENDKIM, opendkim_sign

HOST = "mail.example.test"


@pytest.fixture(scope="module")
def zone():
    with ZoneServer(default_ttl=1) as z:
        yield z


@pytest.fixture(scope="module")
def mx(tmp_path_factory, zone):
    srv = Server(tmp_path_factory.mktemp("authhome"))
    srv.data.setdefault("delivery", {})["nameservers"] = [zone.nameserver]
    srv.reset_settings()
    srv.add_user("bob")
    yield srv
    srv.stop()


def publish_key(zone, k) -> None:
    """One TXT record of 255-octet strings, as a zone file would hold it."""
    rec = k.record()
    chunks = " ".join(f'"{rec[i:i + 255]}"' for i in range(0, len(rec), 255))
    zone.set(f"{k.selector}._domainkey.{k.domain}", "TXT", chunks)


@pytest.fixture(scope="module")
def signer_keys(tmp_path_factory, zone):
    """Keys of the remote domains, published in the zone like `coremail dns` says."""
    root = tmp_path_factory.mktemp("remotekeys")
    out = {}
    for domain in ("dkim.test", "align.test"):
        keys = create_keys(root, domain)
        for k in keys:
            publish_key(zone, k)
        out[domain] = {k.kind: k for k in keys}
    return out


def msg(sender: str, subject: str, extra: str = "", body: str = "Hello there.\r\n") -> bytes:
    return (f"From: Someone <{sender}>\r\nTo: bob@example.test\r\nSubject: {subject}\r\n"
            f"Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{time.time_ns()}@x.test>\r\n{extra}\r\n{body}").encode()


def send(mx, data: bytes, sender: str, ip: str = "127.0.0.1", helo: str = "client.test"):
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=20,
                      source_address=(ip, 0)) as c:
        c.ehlo(helo)
        c.sendmail(sender, ["bob@example.test"], data)


def stored(mx, subject: str, folder: str = "INBOX") -> bytes:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for m in mx.messages("bob@example.test", folder):
            data = mx.store.blobs.read(m.blob_id)
            if f"Subject: {subject}\r\n".encode() in data:
                return data
        time.sleep(0.05)
    raise AssertionError(f"no message {subject!r} in {folder}")


def auth_results(data: bytes) -> list[str]:
    text = data.decode()
    return [re.sub(r"\s+", " ", m) for m in
            re.findall(r"(?ms)^Authentication-Results:(.*?)(?=^\S)", text)]


def spam_tests(data: bytes) -> set[str]:
    m = re.search(rb"X-Spam-Status: .* tests=(\S+)", data)
    return set(m.group(1).decode().split(",")) if m else set()


def test_spf_pass_fail_softfail_from_distinct_addresses(mx, zone):
    zone.txt("spf.test", "v=spf1 ip4:127.0.0.2 -all")
    zone.txt("soft.test", "v=spf1 ip4:127.0.0.2 ~all")
    send(mx, msg("a@spf.test", "spf-pass"), "a@spf.test", ip="127.0.0.2")
    send(mx, msg("a@spf.test", "spf-fail"), "a@spf.test", ip="127.0.0.3")
    send(mx, msg("a@soft.test", "spf-soft"), "a@soft.test", ip="127.0.0.4")
    for subject, result, name in (("spf-pass", "pass", "SPF_PASS"),
                                  ("spf-fail", "fail", "SPF_FAIL"),
                                  ("spf-soft", "softfail", "SPF_SOFTFAIL")):
        data = stored(mx, subject)
        [ar] = auth_results(data)
        assert ar.strip().startswith(f"{HOST};"), ar
        assert f"spf={result} smtp.mailfrom=a@" in ar, ar
        assert "dkim=none" in ar and "dmarc=none" in ar
        assert name in spam_tests(data)


def test_null_sender_checks_helo(mx, zone):
    zone.txt("helo.test", "v=spf1 ip4:127.0.0.5 -all")
    send(mx, msg("x@helo.test", "spf-helo"), "", ip="127.0.0.5", helo="helo.test")
    [ar] = auth_results(stored(mx, "spf-helo"))
    assert "spf=pass smtp.helo=helo.test" in ar


@pytest.mark.skipif(not HAVE_OPENDKIM, reason="needs opendkim")
def test_opendkim_signed_mail_verifies_and_a_changed_body_fails(mx, zone, signer_keys):
    key = signer_keys["dkim.test"]["rsa"]
    signed = opendkim_sign(msg("news@dkim.test", "odk-signed"), "dkim.test", key.selector,
                           key.pem)
    assert b"DKIM-Signature:" in signed
    send(mx, signed, "news@dkim.test", ip="127.0.0.6")
    data = stored(mx, "odk-signed")
    [ar] = auth_results(data)
    assert f"dkim=pass header.d=dkim.test header.s={key.selector}" in ar, ar
    assert "DKIM_VALID" in spam_tests(data)
    tampered = signed.replace(b"odk-signed", b"odk-tampered").replace(b"Hello there.",
                                                                       b"Hello th3re.")
    send(mx, tampered, "news@dkim.test", ip="127.0.0.6")
    data = stored(mx, "odk-tampered")
    [ar] = auth_results(data)
    assert "dkim=fail" in ar and "header.d=dkim.test" in ar, ar
    assert "DKIM_INVALID" in spam_tests(data)


def dkimpy_sign(data: bytes, key, domain: str) -> bytes:
    return dkim.sign(data, key.selector.encode(), domain.encode(), key.signing_key(),
                     signature_algorithm=key.algorithm,
                     canonicalize=(b"relaxed", b"relaxed")) + data


def test_dmarc_reject_quarantine_none(mx, zone):
    zone.txt("_dmarc.bank.test", "v=DMARC1; p=reject")
    zone.txt("bank.test", "v=spf1 ip4:127.0.0.2 -all")
    zone.txt("_dmarc.shop.test", "v=DMARC1; p=quarantine")
    zone.txt("_dmarc.blog.test", "v=DMARC1; p=none")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(mx, msg("alerts@bank.test", "forged-bank"), "alerts@bank.test", ip="127.0.0.9")
    assert e.value.smtp_code == 550
    text = e.value.smtp_error.decode()
    assert "5.7.1" in text and "DMARC" in text and "bank.test" in text, text
    # The same domain, sent from its own address: SPF passes aligned.
    send(mx, msg("alerts@bank.test", "real-bank"), "alerts@bank.test", ip="127.0.0.2")
    [ar] = auth_results(stored(mx, "real-bank"))
    assert "dmarc=pass header.from=bank.test" in ar, ar

    send(mx, msg("deals@shop.test", "shop-q"), "deals@shop.test", ip="127.0.0.9")
    data = stored(mx, "shop-q", "Junk")
    assert "dmarc=fail (p=quarantine dis=QUARANTINE) header.from=shop.test" in \
        auth_results(data)[0]
    assert "DMARC_QUARANTINE" in spam_tests(data)

    send(mx, msg("me@blog.test", "blog-none"), "me@blog.test", ip="127.0.0.9")
    data = stored(mx, "blog-none")
    assert "dmarc=fail (p=none dis=NONE)" in auth_results(data)[0]
    assert "DMARC_NONE" in spam_tests(data)


def test_dmarc_alignment_relaxed_strict_and_subdomain_policy(mx, zone, signer_keys):
    zone.txt("_dmarc.align.test", "v=DMARC1; p=reject; sp=quarantine")
    ed = signer_keys["align.test"]["ed25519"]
    # From a subdomain, signed by the parent (Ed25519): relaxed alignment passes.
    sub = dkimpy_sign(msg("x@news.align.test", "relaxed-ok"), ed, "align.test")
    send(mx, sub, "bounce@elsewhere.test", ip="127.0.0.9")
    [ar] = auth_results(stored(mx, "relaxed-ok"))
    assert "dkim=pass header.d=align.test" in ar and "header.a=ed25519-sha256" in ar, ar
    assert "dmarc=pass header.from=news.align.test" in ar, ar
    # Unsigned from the subdomain: the org's sp=quarantine applies, not p=reject.
    send(mx, msg("x@news.align.test", "sub-policy"), "x@news.align.test", ip="127.0.0.9")
    assert "dmarc=fail (p=quarantine" in auth_results(stored(mx, "sub-policy", "Junk"))[0]
    # Strict DKIM alignment: the parent's signature no longer counts.
    zone.txt("_dmarc.strict.align.test", "v=DMARC1; p=quarantine; adkim=s")
    sub = dkimpy_sign(msg("x@strict.align.test", "strict-fail"), ed, "align.test")
    send(mx, sub, "bounce@elsewhere.test", ip="127.0.0.9")
    assert "dmarc=fail" in auth_results(stored(mx, "strict-fail", "Junk"))[0]


def test_forged_authentication_results_removed_others_kept(mx, zone):
    zone.txt("spf.test", "v=spf1 ip4:127.0.0.2 -all")
    extra = (f"Authentication-Results: {HOST};\r\n\tspf=pass smtp.mailfrom=ceo@bank.test;\r\n"
             "\tdmarc=pass header.from=bank.test\r\n"
             f"Authentication-Results: (comment) {HOST.upper()}; dkim=pass\r\n"
             "Authentication-Results: mx.other.test; spf=fail smtp.mailfrom=a@spf.test\r\n")
    send(mx, msg("a@spf.test", "forged-ar", extra), "a@spf.test", ip="127.0.0.3")
    data = stored(mx, "forged-ar")
    ars = auth_results(data)
    assert len(ars) == 2, ars
    ours = [a for a in ars if a.strip().startswith(HOST)]
    assert len(ours) == 1 and "spf=fail" in ours[0]
    assert any("mx.other.test" in a for a in ars)
    assert b"ceo@bank.test" not in data


def test_submission_is_not_checked(mx):
    with mx.smtp("submission", tls=True, login="bob@example.test") as c:
        c.sendmail("bob@example.test", ["bob@example.test"],
                   msg("bob@example.test", "internal"))
    assert auth_results(stored(mx, "internal")) == []


def test_own_domain_keys_published(mx):
    assert [k.kind for k in list_keys(mx.home, "example.test")] == ["rsa", "ed25519"]
