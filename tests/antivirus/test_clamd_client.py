"""The asyncio clamd client against the private clamd: scans, IDSESSION
reuse (and a fresh connection when clamd closed the spare one), the stream
limit, and the words for a clamd that is not there."""
from __future__ import annotations

import asyncio

import pytest

from coremail.pipeline.antivirus.clamd import Clamd, ClamdError, ClamdTooBig, parse_address, probe
from tests.support.clamd import EICAR, SIGNATURE


def run(coro):
    return asyncio.run(coro)


def test_scan_finds_eicar_and_reuses_the_session(clamd):
    async def go():
        c = Clamd(clamd.address, 4)
        try:
            assert await c.scan(b"hello") is None
            first = c.spare[0]
            assert SIGNATURE in (await c.scan(b"junk " + EICAR + b" junk"))
            assert c.spare == [first] and first.next_id == 3   # one connection, two requests
            # clamd ends the session (as on its IdleTimeout): the next scan opens a new one
            first.writer.write(b"zEND\0")
            await first.writer.drain()
            await asyncio.sleep(0.2)
            assert await c.scan(b"x" * 300_000) is None
            assert c.spare and c.spare[0] is not first
            # at once: each scan has its own connection, at most `connections`
            got = await asyncio.gather(*(c.scan(b"y" * 50_000) for _ in range(8)))
            assert got == [None] * 8 and len(c.spare) <= 4
        finally:
            c.close()
    run(go())


def test_tcp_and_version(clamd):
    assert run(probe(clamd.tcp)).startswith("ClamAV ")


def test_stream_limit_is_its_own_error(clamd):
    async def go():
        c = Clamd(clamd.address)
        try:
            with pytest.raises(ClamdTooBig):
                await c.scan(b"z" * (2 << 20))
            assert await c.scan(b"small") is None    # and the client goes on
        finally:
            c.close()
    run(go())


def test_words_for_a_missing_clamd(tmp_path):
    with pytest.raises(ClamdError, match="not running"):
        run(probe(f"unix:{tmp_path}/x.sock"))
    with pytest.raises(ValueError):
        parse_address("clamd")
    assert parse_address("[::1]:3310") == ("tcp", ("::1", 3310))


def test_a_bad_clamd_address_names_the_key():
    from coremail.config import ConfigError, build_settings
    with pytest.raises(ConfigError, match="antivirus.clamd: 'clamd' is not a clamd address"):
        build_settings({"antivirus": {"clamd": "clamd"}})
    with pytest.raises(ConfigError, match="antivirus.on_error"):
        build_settings({"antivirus": {"on_error": "ignore"}})
