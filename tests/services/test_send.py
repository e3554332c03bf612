"""Sending without SMTP (the webmail's path): the same verdicts as port 587,
refusals per recipient with nothing sent, the ingest path, a Sent copy."""
from __future__ import annotations

import pytest

from coremail.pipeline.rules import Pipeline
from coremail.services.send import Sender

MSG = (b"From: Amy <amy@example.test>\r\nTo: bob@example.test, x@far.test\r\n"
       b"Subject: plans\r\n\r\nSee you.\r\n")


@pytest.fixture
def sender(world):
    pipe = Pipeline(world.store, lambda: world.settings, log=world.log)
    yield Sender(pipe, world.ingest)
    pipe.close()


async def test_send_to_local_and_remote_with_a_copy_in_sent(world, sender):
    amy, bob = world.user("amy@example.test"), world.user("bob@example.test")
    r = await sender.send(amy, ip="192.0.2.7", sender="amy@example.test",
                          recipients=["bob@example.test", "x@far.test"], content=MSG)
    assert r.ok and r.saved and r.verdict.code == 250 and r.qid
    [got] = world.messages(bob)
    raw = world.store.blobs.read(got.blob_id)
    assert raw.endswith(MSG) and b"with HTTP id " + r.qid.encode() in raw
    assert [x.address for x in world.store.queue_get(r.qid).recipients] == ["x@far.test"]
    [sent] = world.messages(amy, "Sent")
    assert world.store.blobs.read(sent.blob_id) == MSG and "\\Seen" in sent.flags


async def test_a_bad_recipient_stops_everything_and_says_why(world, sender):
    amy = world.user("amy@example.test")
    world.user("bob@example.test")
    r = await sender.send(amy, ip="192.0.2.7", sender="amy@example.test",
                          recipients=["bob@example.test", "nobody@example.test", "a b@far.test"],
                          content=MSG)
    assert not r.ok and set(r.refused) == {"nobody@example.test", "a b@far.test"}
    assert r.refused["nobody@example.test"].enhanced == "5.1.1"
    assert r.refused["a b@far.test"].enhanced == "5.1.3"
    assert world.store.queue_list() == [] and world.messages(amy, "Sent") == []


async def test_the_sender_rule_of_587_holds(world, sender):
    amy = world.user("amy@example.test")
    r = await sender.send(amy, ip="192.0.2.7", sender="boss@example.test",
                          recipients=["x@far.test"], content=MSG)
    assert not r.ok and (r.verdict.code, r.verdict.enhanced) == (553, "5.7.1")
    world.settings = world.settings.model_copy(update={"limits": world.settings.limits.model_copy(
        update={"max_message_size": 10})})
    r = await sender.send(amy, ip="192.0.2.7", sender="amy@example.test",
                          recipients=["x@far.test"], content=MSG)
    assert (r.verdict.code, r.verdict.enhanced) == (552, "5.3.4")


async def test_a_webmail_send_is_in_the_trace_like_smtp_intake(world):
    from coremail.obs.trace import Tracer
    from coremail.services.trace import MessageTrace
    tracer = Tracer(world.store.trace_add, service="web")
    pipe = Pipeline(world.store, lambda: world.settings, log=world.log)
    try:
        amy, _ = world.user("amy@example.test"), world.user("bob@example.test")
        r = await Sender(pipe, world.ingest, tracer).send(
            amy, ip="192.0.2.7", sender="amy@example.test",
            recipients=["bob@example.test", "x@far.test"], content=MSG)
        tracer.flush()
    finally:
        pipe.close()
        tracer.close()
    [story] = MessageTrace(world.store).find(r.qid)
    kinds = [e.kind for e in story.events]
    assert kinds[0] == "received" and "delivered" in kinds and kinds[-1] == "queued"
    got = story.events[0]
    assert got.text == ("received from the webmail (a browser at 192.0.2.7), signed in as "
                        "amy@example.test: <amy@example.test> to <bob@example.test>, "
                        f"<x@far.test>, {len(MSG)} bytes")
    assert got.details["listener"] == "webmail" and got.details["subject"] == "plans"
    assert got.service == "web"
