"""The DNSBL check against a loopback DNS server: IPv4 and IPv6 clients in
RFC 5782's forms, reject or score, answers cached for their TTL, a silent
zone costs at most its time-out, authenticated clients never asked."""
from __future__ import annotations

import time

from coremail.config import build_settings
from coremail.pipeline import dnsbl
from coremail.pipeline.checks import Message
from coremail.pipeline.dnsbl import DnsblCheck
from coremail.pipeline.envelope import Client, Envelope
from coremail.pipeline.registry import CheckContext
from coremail.store.memory import MemoryStore
from coremail.store.interfaces import User

RAW = b"Subject: x\r\n\r\nbody\r\n"


def run(dns, ip, zones, action="reject", user=None):
    s = build_settings({"delivery": {"nameservers": [dns.nameserver]},
                        "antispam": {"dnsbl": zones, "dnsbl_action": action}})
    ctx = CheckContext(MemoryStore(), lambda: s)
    msg = Message(Client(ip, user=user), Envelope(), RAW, RAW[:12], s)
    return DnsblCheck(ctx), msg


async def test_a_listed_ipv4_client_is_refused_naming_zone_and_address(dns_server):
    dns_server.a("9.2.0.192.bl.test", "127.0.0.2")
    check, msg = run(dns_server, "192.0.2.9", ["bl.test", "clean.test"])
    r = await check(msg)
    assert (r.verdict.code, r.verdict.enhanced) == (554, "5.7.1")
    assert r.verdict.text.startswith("client [192.0.2.9] listed by bl.test;")
    assert "ask the operator of bl.test to remove the listing" in r.verdict.text
    assert [s.name for s in r.scores] == ["DNSBL_BL_TEST"]
    assert ("9.2.0.192.clean.test", "A") in dns_server.queries   # both zones asked
    before = len(dns_server.queries)
    assert (await check(msg)).verdict is not None
    assert len(dns_server.queries) == before     # cached for the record's TTL


async def test_an_ipv6_client_is_asked_by_nibbles_and_scored(dns_server):
    name = ".".join(reversed("20010db8000000000000000000000001")) + ".bl.test"
    dns_server.a(name, "127.0.0.4")
    check, msg = run(dns_server, "2001:db8::1", ["bl.test"], action="score")
    r = await check(msg)
    assert r.verdict is None and r.scores[0].points == dnsbl.POINTS
    assert "listed by bl.test (127.0.0.4)" in r.scores[0].words


async def test_unlisted_refused_queries_and_silent_zones_list_nobody(dns_server, monkeypatch):
    monkeypatch.setattr(dnsbl, "ZONE_TIMEOUT", 0.5)
    dns_server.a("7.2.0.192.odd.test", "127.255.255.254")   # "query refused", not a listing
    dns_server.timeout("7.2.0.192.slow.test")
    check, msg = run(dns_server, "192.0.2.7", ["bl.test", "odd.test", "slow.test"])
    t0 = time.monotonic()
    assert await check(msg) is None
    assert time.monotonic() - t0 < 2


async def test_authenticated_clients_are_not_looked_up(dns_server):
    user = User(1, "a@x.test", "x.test", "", "", 0, 0, 0, True, False)
    check, msg = run(dns_server, "192.0.2.9", ["bl.test"], user=user)
    assert await check(msg) is None and dns_server.queries == []
