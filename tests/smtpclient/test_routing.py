"""Outbound routing against a real DNS server on loopback, through dnspython."""

from __future__ import annotations

import asyncio
import time

import dns.asyncquery
import dns.message
import pytest

from coremail import dns as cdns
from coremail.smtpclient.routing import (
    PermanentRouteError,
    Route,
    Router,
    TemporaryRouteError,
)
from tests.support.dnsserver import ZoneServer


def resolver_for(server: ZoneServer, **kw) -> Router:
    kw.setdefault("timeout", 0.5)
    return Router(cdns.Resolver([server.nameserver], **kw))


def names(r: Route) -> list[str]:
    return [h.name for h in r.hosts]


async def test_mx_preference_order(dns_server: ZoneServer):
    dns_server.mx("example.test", (20, "backup.example.test"), (10, "mx1.example.test"),
                  (30, "last.example.test"))
    dns_server.a("mx1.example.test", "192.0.2.1")
    dns_server.aaaa("mx1.example.test", "2001:db8::1")
    dns_server.a("backup.example.test", "192.0.2.2")
    dns_server.a("last.example.test", "192.0.2.3")
    r = await resolver_for(dns_server).route("example.test", relayhost="", port=2525)
    assert names(r) == ["mx1.example.test", "backup.example.test", "last.example.test"]
    assert [h.preference for h in r.hosts] == [10, 20, 30]
    assert r.hosts[0].addresses == ("192.0.2.1", "2001:db8::1")  # IPv4 first
    assert not r.relayed and not r.implicit_mx
    targets = r.targets()
    assert [(t.hostname, t.address, t.port) for t in targets] == [
        ("mx1.example.test", "192.0.2.1", 2525),
        ("mx1.example.test", "2001:db8::1", 2525),
        ("backup.example.test", "192.0.2.2", 2525),
        ("last.example.test", "192.0.2.3", 2525),
    ]


async def test_equal_preferences_are_shuffled(dns_server: ZoneServer):
    dns_server.mx("example.test", (10, "a.example.test"), (10, "b.example.test"),
                  (5, "first.example.test"))
    for host in ("a", "b", "first"):
        dns_server.a(f"{host}.example.test", "192.0.2.9")
    res = resolver_for(dns_server)
    seen = set()
    for _ in range(60):
        r = await res.route("example.test")
        assert names(r)[0] == "first.example.test"
        seen.add(tuple(names(r)[1:]))
    assert seen == {("a.example.test", "b.example.test"), ("b.example.test", "a.example.test")}


async def test_no_mx_falls_back_to_address(dns_server: ZoneServer):
    dns_server.a("plain.test", "192.0.2.7")
    dns_server.aaaa("plain.test", "2001:db8::7")
    r = await resolver_for(dns_server).route("plain.test")
    assert r.implicit_mx
    assert names(r) == ["plain.test"]
    assert r.hosts[0].addresses == ("192.0.2.7", "2001:db8::7")
    assert r.port == 25


async def test_no_mx_and_no_address_is_permanent(dns_server: ZoneServer):
    dns_server.txt("textonly.test", "v=spf1 -all")
    with pytest.raises(PermanentRouteError) as e:
        await resolver_for(dns_server).route("textonly.test")
    assert e.value.status == "5.1.2"


async def test_null_mx(dns_server: ZoneServer):
    dns_server.null_mx("nomail.test")
    dns_server.a("nomail.test", "192.0.2.8")  # an address must not revive it
    with pytest.raises(PermanentRouteError) as e:
        await resolver_for(dns_server).route("nomail.test")
    assert e.value.status == "5.1.10"
    assert "does not accept mail (null MX)" in e.value.text
    assert e.value.permanent


async def test_nxdomain_with_hint(dns_server: ZoneServer):
    with pytest.raises(PermanentRouteError) as e:
        await resolver_for(dns_server).route("gmial.com")
    assert e.value.status == "5.1.2"
    assert "domain gmial.com does not exist" in e.value.text
    assert "did you mean gmail.com?" in e.value.text


async def test_nxdomain_without_hint(dns_server: ZoneServer):
    with pytest.raises(PermanentRouteError) as e:
        await resolver_for(dns_server).route("no-such-place.example.org")
    assert e.value.text == "domain no-such-place.example.org does not exist"


async def test_servfail_is_temporary_and_not_cached(dns_server: ZoneServer):
    dns_server.servfail("broken.test")
    dns_server.a("broken.test", "192.0.2.4")
    res = resolver_for(dns_server)
    with pytest.raises(TemporaryRouteError) as e:
        await res.route("broken.test")
    assert e.value.status == "4.4.3"
    assert not e.value.permanent
    dns_server.heal()
    assert names(await res.route("broken.test")) == ["broken.test"]


async def test_timeout_is_temporary(dns_server: ZoneServer):
    dns_server.timeout("slow.test")
    started = time.monotonic()
    with pytest.raises(TemporaryRouteError) as e:
        await resolver_for(dns_server, timeout=0.3).route("slow.test")
    assert e.value.status == "4.4.3"
    assert time.monotonic() - started < 3


async def test_one_mx_host_failing_leaves_the_others(dns_server: ZoneServer):
    dns_server.mx("example.test", (10, "bad.example.test"), (20, "good.example.test"))
    dns_server.servfail("bad.example.test")
    dns_server.a("good.example.test", "192.0.2.5")
    r = await resolver_for(dns_server).route("example.test")
    assert names(r) == ["good.example.test"]


async def test_every_mx_host_failing_is_temporary(dns_server: ZoneServer):
    dns_server.mx("example.test", (10, "bad.example.test"))
    dns_server.servfail("bad.example.test")
    with pytest.raises(TemporaryRouteError) as e:
        await resolver_for(dns_server).route("example.test")
    assert e.value.status == "4.4.3"


async def test_dangling_mx_is_temporary(dns_server: ZoneServer):
    dns_server.mx("example.test", (10, "gone.elsewhere.test"))
    with pytest.raises(TemporaryRouteError) as e:
        await resolver_for(dns_server).route("example.test")
    assert e.value.status == "4.4.4"


async def test_changed_mx_is_picked_up_after_ttl(dns_server: ZoneServer):
    dns_server.mx("example.test", (10, "old.example.test"), ttl=1)
    dns_server.a("old.example.test", "192.0.2.10", ttl=1)
    dns_server.a("new.example.test", "192.0.2.11", ttl=1)
    res = resolver_for(dns_server)
    assert names(await res.route("example.test")) == ["old.example.test"]

    dns_server.mx("example.test", (10, "new.example.test"), ttl=1)
    asked = len(dns_server.queries)
    # Within the TTL the cached answer is used, without asking the server.
    assert names(await res.route("example.test")) == ["old.example.test"]
    assert len(dns_server.queries) == asked

    await asyncio.sleep(1.2)
    assert names(await res.route("example.test")) == ["new.example.test"]


async def test_negative_answer_cached_for_soa_minimum(dns_server: ZoneServer):
    dns_server.negative_ttl = 1
    res = resolver_for(dns_server)
    with pytest.raises(PermanentRouteError):
        await res.route("late.test")
    dns_server.a("late.test", "192.0.2.12")
    with pytest.raises(PermanentRouteError):
        await res.route("late.test")
    await asyncio.sleep(1.2)
    assert names(await res.route("late.test")) == ["late.test"]


async def test_negative_answer_cached_at_most_60_seconds(dns_server: ZoneServer):
    now = [1000.0]
    dns_server.negative_ttl = 3600
    res = resolver_for(dns_server, clock=lambda: now[0])
    with pytest.raises(PermanentRouteError):
        await res.route("late.test")
    dns_server.a("late.test", "192.0.2.12")
    now[0] += 59
    with pytest.raises(PermanentRouteError):
        await res.route("late.test")
    now[0] += 2
    assert names(await res.route("late.test")) == ["late.test"]


async def test_relayhost_bypasses_dns(dns_server: ZoneServer):
    res = resolver_for(dns_server)
    r = await res.route("example.test", relayhost="127.0.0.1:2525", port=25)
    assert r.relayed
    assert [(t.hostname, t.address, t.port) for t in r.targets()] == [("127.0.0.1", "127.0.0.1", 2525)]

    r = await res.route("gmial.com", relayhost="[smtp.relay.test]:587", port=25)
    assert [(t.hostname, t.address, t.port) for t in r.targets()] == [
        ("smtp.relay.test", "smtp.relay.test", 587)]

    r = await res.route("example.test", relayhost="smtp.relay.test", port=2525)
    assert r.port == 25  # the relayhost's own default, not the MX port
    assert dns_server.queries == []


async def test_domain_literals_route_directly(dns_server: ZoneServer):
    res = resolver_for(dns_server)
    r = await res.route("[192.0.2.44]", port=2525)
    assert [(t.address, t.port) for t in r.targets()] == [("192.0.2.44", 2525)]
    r = await res.route("[IPv6:2001:db8::44]")
    assert [t.address for t in r.targets()] == ["2001:db8::44"]
    for bad in ("[999.1.1.1]", "[2001:db8::1]", "[IPv6:192.0.2.1]"):
        with pytest.raises(PermanentRouteError):
            await res.route(bad)
    assert dns_server.queries == []


async def test_idna_domain_is_encoded(dns_server: ZoneServer):
    dns_server.mx("xn--bcher-kva.test", (10, "mx.xn--bcher-kva.test"))
    dns_server.a("mx.xn--bcher-kva.test", "192.0.2.13")
    r = await resolver_for(dns_server).route("Bücher.test")
    assert r.domain == "xn--bcher-kva.test"
    assert names(r) == ["mx.xn--bcher-kva.test"]
    assert ("xn--bcher-kva.test", "MX") in dns_server.queries


async def test_bad_domain_is_permanent(dns_server: ZoneServer):
    res = resolver_for(dns_server)
    for bad in ("", "a..b", "x" * 64 + ".test"):
        with pytest.raises(PermanentRouteError) as e:
            await res.route(bad)
        assert e.value.status == "5.1.2"


async def test_router_from_the_settings_as_the_scheduler_builds_it(dns_server: ZoneServer):
    from coremail.config import build_settings
    dns_server.a("plain.test", "192.0.2.7")
    s = build_settings({"delivery": {"nameservers": [dns_server.nameserver]}})
    r = await Router(cdns.Resolver.from_settings(s)).route("plain.test", port=25)
    assert names(r) == ["plain.test"]


async def test_server_answers_over_tcp_too(dns_server: ZoneServer):
    dns_server.a("tcp.test", "192.0.2.14")
    reply = await dns.asyncquery.tcp(dns.message.make_query("tcp.test", "A"), "127.0.0.1",
                                     port=dns_server.port, timeout=2)
    assert reply.answer[0][0].address == "192.0.2.14"
