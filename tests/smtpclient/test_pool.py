"""The connection cache against smtp-sink: a healthy connection carries the
next message after RSET; one with a refusal, an idle one past its time, one
that did its share of messages, or one the host dropped is never reused."""
from __future__ import annotations

import asyncio
import ssl

import pytest

from coremail.smtpclient.pool import ConnectionCache
from coremail.smtpclient.routing import Target
from coremail.smtpclient.session import send
from tests.support.peers import HAVE_SINK, Sink

needs_sink = pytest.mark.skipif(not HAVE_SINK, reason="needs smtp-sink")


def msg(n: int) -> bytes:
    return f"Message-ID: <pool-{n}@x>\r\nSubject: s\r\n\r\nbody\r\n".encode()


async def deliver(sink: Sink, cache: ConnectionCache, n: int, rcpt: str = "x@far.test"):
    return await send(Target("sink.test", "127.0.0.1", sink.port, 0), helo="mail.example.test",
                      sender="a@example.test", recipients=[rcpt], data=msg(n), cache=cache)


@pytest.fixture
def sink():
    s = Sink().start()
    yield s
    s.stop()
    s.remove()


@needs_sink
async def test_reuse_until_max_messages(sink):
    cache = ConnectionCache(max_messages=3)
    try:
        for n in range(7):
            got = await deliver(sink, cache, n)
            assert got["x@far.test"].state == "sent"
        assert (cache.opened, cache.reused) == (3, 4)  # 3 + 3 + 1 messages
        assert cache.idle_count() == 1
    finally:
        await cache.close_all()
    await asyncio.sleep(0.2)
    assert sorted(sink.message_ids()) == [f"<pool-{n}@x>" for n in range(7)]


@needs_sink
async def test_idle_connection_is_closed_after_its_time(sink):
    cache = ConnectionCache(idle=0.3)
    try:
        await deliver(sink, cache, 1)
        assert cache.idle_count() == 1
        await asyncio.sleep(0.6)
        assert cache.idle_count() == 0  # swept, not merely skipped
        await deliver(sink, cache, 2)
        assert (cache.opened, cache.reused) == (2, 0)
    finally:
        await cache.close_all()


@needs_sink
async def test_a_refusal_is_never_reused():
    sink = Sink(options=("-f", "RCPT", "-B", "550 5.1.1 Recipient unknown")).start()
    cache = ConnectionCache()
    try:
        got = await deliver(sink, cache, 1)
        assert got["x@far.test"].state == "failed"
        assert cache.idle_count() == 0
        await deliver(sink, cache, 2)
        assert (cache.opened, cache.reused) == (2, 0)
    finally:
        await cache.close_all()
        sink.stop()
        sink.remove()


@needs_sink
async def test_a_connection_the_host_dropped_is_replaced(tmp_path):
    first = Sink().start()
    cache = ConnectionCache()
    try:
        await deliver(first, cache, 1)
        first.stop()  # the idle cached connection dies with it
        second = Sink(port=first.port).start()
        try:
            got = await deliver(second, cache, 2)
            assert got["x@far.test"].state == "sent"
            assert (cache.opened, cache.reused) == (2, 0)
            await asyncio.sleep(0.2)
            assert second.message_ids() == ["<pool-2@x>"]
        finally:
            second.stop()
            second.remove()
    finally:
        await cache.close_all()
        first.remove()


def test_the_cache_owns_one_opportunistic_tls_context():
    cache, other = ConnectionCache(), ConnectionCache()
    assert cache.tls is cache.tls  # made once, on first use
    assert cache.tls is not other.tls  # no module-level state shared between caches
    assert cache.tls.verify_mode == ssl.CERT_NONE and not cache.tls.check_hostname
