"""The outbound SMTP session against smtp-sink on loopback: per-recipient
results on one connection, replies kept word for word, refused hosts."""
from __future__ import annotations

import pytest

from coremail.smtpclient.routing import Target
from coremail.smtpclient.session import HostFailed, enhanced_of, reply_result, send
from tests.support.peers import HAVE_SINK, Sink, free_port

needs_sink = pytest.mark.skipif(not HAVE_SINK, reason="needs smtp-sink")


def test_enhanced_codes_are_read_or_derived():
    assert enhanced_of(550, "5.1.1 <x@y>: no such user") == ("5.1.1", "<x@y>: no such user")
    assert enhanced_of(451, "try later") == ("4.0.0", "try later")
    assert enhanced_of(550, "4.1.1 mismatched class") == ("5.0.0", "4.1.1 mismatched class")
    r = reply_result(452, "4.2.2 mailbox full", "mx", "127.0.0.1")
    assert (r.state, r.status, r.diagnostic) == ("deferred", "4.2.2", "452 4.2.2 mailbox full")


@needs_sink
async def test_all_recipients_on_one_connection_with_per_recipient_results():
    sink = Sink().start()
    noted = []
    try:
        got = await send(Target("sink.test", "127.0.0.1", sink.port, 0), helo="mail.example.test",
                         sender="a@example.test", recipients=["x@far.test", "y@far.test"],
                         data=b"Message-ID: <one@x>\r\nSubject: s\r\n\r\nbody\r\n",
                         on_accepted=lambda acc, r: noted.append((acc, r.state)))
        assert {a: r.state for a, r in got.items()} == {"x@far.test": "sent", "y@far.test": "sent"}
        assert noted == [(["x@far.test", "y@far.test"], "sent")]
        assert sink.message_ids() == ["<one@x>"]  # one transaction carried both
    finally:
        sink.stop()
        sink.remove()


@needs_sink
async def test_hard_refusal_of_every_recipient_is_per_recipient_failure():
    sink = Sink(options=("-f", "RCPT", "-B", "550 5.1.1 Recipient unknown")).start()
    try:
        got = await send(Target("sink.test", "127.0.0.1", sink.port, 0), helo="h",
                         sender="a@example.test", recipients=["x@far.test"], data=b"x\r\n")
        assert got["x@far.test"].state == "failed"
        assert got["x@far.test"].status == "5.1.1"
    finally:
        sink.stop()
        sink.remove()


async def test_refused_connection_is_a_host_failure():
    with pytest.raises(HostFailed) as e:
        await send(Target("gone.test", "127.0.0.1", free_port(), 0), helo="h",
                   sender="a@example.test", recipients=["x@far.test"], data=b"x\r\n",
                   connect_timeout=2)
    assert e.value.status == "4.4.1" and "connection refused" in e.value.text
