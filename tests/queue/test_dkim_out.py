"""Outbound DKIM: mail from a local domain leaving through the queue is signed
(RSA and Ed25519), reaches a private Postfix and verifies with OpenDKIM;
a rotation signs with the new selectors at once; bounces are signed too."""
from __future__ import annotations

import pytest

from coremail.mail.dkimkeys import create_keys, list_keys
from coremail.mail.dkimsign import DkimSigner
from tests.queue.conftest import message as plain_message, needs_postfix
from tests.queue.test_delivery import point_mx, use_dns
from tests.support.opendkim import HAVE_OPENDKIM, opendkim_verify
from tests.support.peers import PostfixMX

def message(subject: str) -> bytes:
    # Full addresses: Postfix's cleanup would complete a bare "To: someone"
    # (and so break any signature), as any receiving MTA may.
    return plain_message(subject).replace(b"To: someone\r\n", b"To: Bob <bob@remote.test>\r\n")


needs_opendkim = pytest.mark.skipif(not HAVE_OPENDKIM, reason="needs opendkim, opendkim-tools")


def published(home, domain="example.test") -> dict[str, str]:
    return {f"{k.selector}._domainkey.{domain}": k.record() for k in list_keys(home, domain)}


@pytest.fixture
def remote_mx():
    mx = PostfixMX(domain="remote.test", users=["bob"], ip="127.0.0.1").start()
    yield mx
    mx.stop()


@needs_postfix
@needs_opendkim
async def test_signed_mail_arrives_and_opendkim_verifies_it(harness, dns_server, remote_mx):
    point_mx(dns_server, "remote.test")
    await use_dns(harness, dns_server, remote_mx.port)
    await harness.start()
    harness.queue(message("signed"), "sender@example.test", ["bob@remote.test"])
    await harness.drained()
    await harness.until(lambda: remote_mx.messages("bob"), what="bob's copy")
    got = remote_mx.messages("bob")[0]
    assert got.count(b"DKIM-Signature:") == 2
    active = [k.selector for k in list_keys(harness.home, "example.test") if k.active]
    results = opendkim_verify(got, published(harness.home))
    assert sorted(results) == sorted(f"pass {s}" for s in active), results
    # A changed body fails at OpenDKIM too (the check is real).
    tampered = got.replace(b"Hello there.", b"Hello th3re.")
    assert all(r.startswith("fail") for r in opendkim_verify(tampered, published(harness.home)))

    # Rotation: the next message is signed with the new pair, the old stays published.
    new = {k.selector for k in create_keys(harness.home, "example.test")}
    harness.queue(message("after rotation"), "sender@example.test", ["bob@remote.test"])
    await harness.drained()
    await harness.until(lambda: len(remote_mx.messages("bob")) == 2, what="the second copy")
    second = [m for m in remote_mx.messages("bob") if b"after rotation" in m][0]
    results = opendkim_verify(second, published(harness.home))
    assert sorted(results) == sorted(f"pass {s}" for s in new), results
    assert len(list_keys(harness.home, "example.test")) == 4


def test_signing_domain_choice(tmp_path):
    create_keys(tmp_path, "example.test")
    s = DkimSigner(tmp_path)
    local = {"example.test"}.__contains__
    bounce = (b"From: Mail Delivery System <MAILER-DAEMON@mail.example.test>\r\n"
              b"Subject: failed\r\n\r\nbody\r\n")
    assert s.domain_for(bounce, "", local) == "example.test"
    forward = b"From: a@elsewhere.test\r\nSubject: x\r\n\r\nbody\r\n"
    assert s.domain_for(forward, "a@elsewhere.test", local) is None
    assert s.domain_for(forward, "SRS0=abcd=TT=elsewhere.test=a@example.test", local) \
        == "example.test"
    assert s.sign(forward, "a@elsewhere.test", local) == forward
    assert s.domain_for(b"From: x@example.test\r\n\r\n", "", lambda d: False) is None
