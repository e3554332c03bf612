"""Policy without a socket: the pipeline's verdicts on senders, recipients
and messages against a real store in a temp dir."""
from __future__ import annotations

import asyncio

import pytest

from coremail.config import build_settings
from coremail.mail.address import parse_address
from coremail.pipeline.envelope import Client, Envelope
from coremail.pipeline.rules import Pipeline, header_section
from coremail.store.sql.store import SqlStore


@pytest.fixture
def pipe(tmp_path):
    store = SqlStore.open_home(tmp_path)
    store.migrate()
    store.add_domain("local.test")
    u = store.add_user("amy@local.test", password_hash="x", quota=0)
    store.add_alias("sales@local.test", "amy@local.test")
    settings = {"s": build_settings({})}
    p = Pipeline(store, lambda: settings["s"])
    p.user = u
    p.set = lambda **kw: settings.__setitem__("s", build_settings(kw))
    yield p
    store.close()


def test_sender_rules(pipe):
    mx = Client("192.0.2.1")
    assert pipe.sender(mx, "")[0].ok
    assert pipe.sender(mx, "x@far.test")[0].ok
    assert pipe.sender(Client("192.0.2.1", "submission"), "x@far.test")[0].code == 530
    v, _ = pipe.sender(mx, "x@far.test", declared_size=60 * 1024 * 1024)
    assert (v.code, v.enhanced) == (552, "5.3.4") and "50 MiB" in v.text
    v, _ = pipe.sender(mx, "bad address@far.test")
    assert (v.code, v.enhanced) == (553, "5.1.3")
    authed = Client("192.0.2.1", "submission", user=pipe.user)
    assert pipe.sender(authed, "sales@local.test")[0].ok
    assert pipe.sender(authed, "other@far.test")[0].code == 553
    pipe.set(policy={"allow_sender_mismatch": True})
    assert pipe.sender(authed, "other@far.test")[0].ok


@pytest.mark.parametrize("rcpt, code, enh", [
    ("amy@local.test", 250, "2.1.5"),
    ("sales@LOCAL.test", 250, "2.1.5"),
    ("nope@local.test", 550, "5.1.1"),
    ("x@far.test", 550, "5.7.1"),
    ("x%far.test@local.test", 550, "5.7.1"),
    ("far.test!x@local.test", 550, "5.7.1"),
    ('"x@far.test"@local.test', 550, "5.7.1"),
    ("x@far.test@local.test", 550, "5.7.1"),
    ("amy @local.test", 553, "5.1.3"),
])
def test_recipient_rules(pipe, rcpt, code, enh):
    v, r = pipe.recipient(Client("192.0.2.1"), Envelope(), rcpt)
    assert (v.code, v.enhanced) == (code, enh), v
    assert (r is not None) == v.ok


def test_authenticated_relay_and_limits(pipe):
    authed = Client("192.0.2.1", "submission", user=pipe.user)
    v, r = pipe.recipient(authed, Envelope(), "x@far.test")
    assert v.ok and r.relay and r.remote == ["x@far.test"]
    pipe.set(limits={"max_recipients": 1})
    env = Envelope(recipients=[r])
    v, _ = pipe.recipient(authed, env, "y@far.test")
    assert (v.code, v.enhanced) == (452, "4.5.3")


def test_cached_answers_need_no_store(pipe):
    mx = Client("192.0.2.1")
    assert pipe.recipient(mx, Envelope(), "amy@local.test", store_ok=False) is None
    pipe.recipient(mx, Envelope(), "amy@local.test")
    v, r = pipe.recipient(mx, Envelope(), "amy@local.test", store_ok=False)
    assert v.ok and r.users[0].address == "amy@local.test"


async def test_message_checks(pipe):
    env, mx = Envelope(), Client("192.0.2.1")
    assert (await pipe.check_message(mx, env, b"Subject: x\r\n\r\nbody\r\n", 20)).verdict.ok
    looped = b"".join(b"Received: from h%d\r\n" % i for i in range(60)) + b"\r\nx\r\n"
    v = (await pipe.check_message(mx, env, looped, len(looped))).verdict
    assert (v.code, v.enhanced) == (554, "5.4.6")
    assert (await pipe.check_message(mx, env, b"\r\nbody only\r\n", 12)).verdict.ok
    assert header_section(b"A: b\r\n\r\nbody", 100) == b"A: b\r\n"
    assert header_section(b"A: " + b"b" * 200 + b"\r\n\r\n", 100) is None


def test_harvest_tarpit_then_421(pipe):
    """Issue 12, point 7: two unknown recipients cost nothing (a typo), then
    each waits twice as long, and past limits.max_unknown_recipients 421."""
    assert [pipe.harvest(n, False) for n in (1, 2)] == [(0.0, None), (0.0, None)]
    assert [pipe.harvest(n, False)[0] for n in (3, 4, 5)] == [1.0, 2.0, 4.0]
    delay, end = pipe.harvest(6, False)
    assert delay == 0 and (end.code, end.enhanced) == (421, "4.7.0")
    # an address already counted (harvest, failed logins): one typo only
    assert pipe.harvest(1, True) == (0.0, None) and pipe.harvest(2, True)[0] == 1.0
    pipe.set(limits={"max_unknown_recipients": 50})
    assert pipe.harvest(40, False) == (30.0, None)   # the delay has a ceiling
    assert pipe.unknown_recipient(pipe.recipient(Client("192.0.2.1"), Envelope(),
                                                 "nope@local.test")[0])


async def test_a_block_at_rcpt_has_its_hit_written_within_seconds(pipe, monkeypatch):
    monkeypatch.setattr(pipe.context.rule_hits, "delay", 0.05)
    rule = pipe.store.add_filter_rule("sender", "@bad.test", "reject")
    env = Envelope()
    env.sender = parse_address("x@bad.test")
    v, _ = await pipe.check_recipient(Client("192.0.2.1"), env, "amy@local.test")
    assert v.code == 550
    for _ in range(40):           # no further message needed to write it
        await asyncio.sleep(0.05)
        if pipe.store.list_filter_rules()[0].hits:
            break
    assert [(r.id, r.hits) for r in pipe.store.list_filter_rules()] == [(rule.id, 1)]
