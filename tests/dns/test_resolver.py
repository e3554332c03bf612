"""coremail.dns against a real DNS server on loopback: typed answers per record
type, NXDOMAIN apart from NODATA apart from a temporary failure, and a cache
that keeps an answer only as long as its TTL says."""

from __future__ import annotations

import asyncio

import pytest

from coremail.config import build_settings
from coremail.dns import (
    MX,
    InvalidName,
    Resolver,
    Status,
    reverse_name,
    split_hostport,
    to_ascii,
)
from tests.support.dnsserver import ZoneServer


def resolver_for(server: ZoneServer, **kw) -> Resolver:
    kw.setdefault("timeout", 0.5)
    return Resolver([server.nameserver], **kw)


async def test_a_and_aaaa(dns_server: ZoneServer):
    dns_server.a("host.example.test", "192.0.2.1", "192.0.2.2")
    dns_server.aaaa("host.example.test", "2001:db8::1")
    res = resolver_for(dns_server)
    a = await res.a("Host.Example.Test.")
    assert (a.name, a.rdtype, a.status) == ("host.example.test", "A", Status.OK)
    assert sorted(a.records) == ["192.0.2.1", "192.0.2.2"]
    assert (await res.aaaa("host.example.test")).records == ("2001:db8::1",)
    both = await res.addresses("host.example.test")
    assert both.status is Status.OK
    assert both.records[-1] == "2001:db8::1"  # IPv4 first


async def test_mx_records_are_typed_and_null_mx_is_an_empty_exchange(dns_server: ZoneServer):
    dns_server.mx("example.test", (10, "MX1.example.test"), (20, "mx2.example.test"))
    dns_server.null_mx("nomail.test")
    res = resolver_for(dns_server)
    assert sorted((await res.mx("example.test")).records) == [
        MX(10, "mx1.example.test"), MX(20, "mx2.example.test")]
    assert (await res.mx("nomail.test")).records == (MX(0, ""),)


async def test_txt_joins_the_strings_of_one_record(dns_server: ZoneServer):
    dns_server.txt("example.test", "v=spf1 ip4:192.0.2.0/24 -all", "google-site-verification=x")
    dns_server.set("sel._domainkey.example.test", "TXT", '"v=DKIM1; k=rsa; " "p=MIIBIjAN"')
    res = resolver_for(dns_server)
    assert sorted((await res.txt("example.test")).records) == [
        "google-site-verification=x", "v=spf1 ip4:192.0.2.0/24 -all"]
    assert (await res.txt("sel._domainkey.example.test")).records == ("v=DKIM1; k=rsa; p=MIIBIjAN",)


async def test_ptr_of_v4_and_v6(dns_server: ZoneServer):
    dns_server.set("7.2.0.192.in-addr.arpa", "PTR", "Mail.Example.Test.")
    dns_server.set(reverse_name("2001:db8::7"), "PTR", "mail6.example.test.")
    res = resolver_for(dns_server)
    ptr = await res.ptr("192.0.2.7")
    assert (ptr.name, ptr.rdtype, ptr.records) == ("7.2.0.192.in-addr.arpa", "PTR",
                                                   ("mail.example.test",))
    assert (await res.ptr("2001:db8::7")).records == ("mail6.example.test",)
    assert (await res.ptr("192.0.2.8")).status is Status.NXDOMAIN


async def test_dnsbl_style_lookup_under_a_zone(dns_server: ZoneServer):
    dns_server.a("2.0.0.127.bl.example.test", "127.0.0.2")
    res = resolver_for(dns_server)
    listed = await res.a(reverse_name("127.0.0.2", "bl.example.test"))
    assert listed.status is Status.OK and listed.records == ("127.0.0.2",)
    clean = await res.a(reverse_name("192.0.2.1", "bl.example.test"))
    assert clean.status is Status.NXDOMAIN and clean.records == ()


async def test_nxdomain_nodata_and_tempfail_are_told_apart(dns_server: ZoneServer):
    dns_server.txt("textonly.test", "hello")
    dns_server.a("parent.test", "192.0.2.1")
    dns_server.a("leaf.empty.parent.test", "192.0.2.2")
    dns_server.servfail("broken.test")
    res = resolver_for(dns_server)
    gone = await res.a("gone.test")
    assert gone.status is Status.NXDOMAIN and not gone.temporary
    nodata = await res.a("textonly.test")
    assert nodata.status is Status.NODATA and nodata.records == ()
    # A name with nothing of its own but names below it exists (RFC 8020).
    assert (await res.a("empty.parent.test")).status is Status.NODATA
    failed = await res.a("broken.test")
    assert failed.status is Status.TEMPFAIL and failed.temporary
    assert "SERVFAIL" in failed.reason
    assert (await res.addresses("textonly.test")).status is Status.NODATA
    assert (await res.addresses("gone.test")).status is Status.NXDOMAIN
    assert (await res.addresses("broken.test")).status is Status.TEMPFAIL


async def test_addresses_found_on_one_side_win_over_a_failure_on_the_other(dns_server: ZoneServer):
    dns_server.a("half.test", "192.0.2.3")
    dns_server.servfail("half.test", "AAAA")
    both = await resolver_for(dns_server).addresses("half.test")
    assert both.status is Status.OK and both.records == ("192.0.2.3",)


async def test_timeout_is_a_temporary_failure_and_not_cached(dns_server: ZoneServer):
    dns_server.timeout("slow.test")
    res = resolver_for(dns_server, timeout=0.3)
    answer = await res.txt("slow.test")
    assert answer.status is Status.TEMPFAIL and answer.reason
    dns_server.heal()
    dns_server.txt("slow.test", "now")
    assert (await res.txt("slow.test")).records == ("now",)


async def test_servfail_is_not_cached(dns_server: ZoneServer):
    dns_server.servfail("broken.test")
    res = resolver_for(dns_server)
    assert (await res.txt("broken.test")).temporary
    dns_server.heal()
    dns_server.txt("broken.test", "fine")
    assert (await res.txt("broken.test")).records == ("fine",)


async def test_answer_is_cached_for_its_ttl_then_asked_again(dns_server: ZoneServer):
    dns_server.txt("example.test", "one", ttl=1)
    res = resolver_for(dns_server)
    assert (await res.txt("example.test")).records == ("one",)
    dns_server.txt("example.test", "two", ttl=1)
    asked = len(dns_server.queries)
    assert (await res.txt("EXAMPLE.test")).records == ("one",)
    assert len(dns_server.queries) == asked  # from the cache
    await asyncio.sleep(1.2)
    assert (await res.txt("example.test")).records == ("two",)
    assert len(dns_server.queries) == asked + 1


async def test_each_type_is_cached_apart(dns_server: ZoneServer):
    dns_server.a("example.test", "192.0.2.1")
    dns_server.txt("example.test", "t")
    res = resolver_for(dns_server)
    assert (await res.a("example.test")).records == ("192.0.2.1",)
    assert (await res.txt("example.test")).records == ("t",)


async def test_zero_ttl_is_not_cached(dns_server: ZoneServer):
    dns_server.a("example.test", "192.0.2.1", ttl=0)
    res = resolver_for(dns_server)
    await res.a("example.test")
    await res.a("example.test")
    assert dns_server.queries.count(("example.test", "A")) == 2


async def test_negative_answers_cached_for_the_soa_minimum_at_most_60_seconds(dns_server: ZoneServer):
    now = [1000.0]
    dns_server.negative_ttl = 3600
    res = resolver_for(dns_server, clock=lambda: now[0])
    assert (await res.a("late.test")).status is Status.NXDOMAIN
    dns_server.txt("late.test", "here")
    now[0] += 59
    assert (await res.a("late.test")).status is Status.NXDOMAIN  # still cached
    now[0] += 2
    assert (await res.a("late.test")).status is Status.NODATA
    dns_server.a("late.test", "192.0.2.12")
    assert (await res.a("late.test")).status is Status.NODATA  # NODATA is cached too
    now[0] += 61
    assert (await res.a("late.test")).records == ("192.0.2.12",)


async def test_idna_names_are_encoded(dns_server: ZoneServer):
    dns_server.txt("xn--bcher-kva.test", "unicode")
    assert (await resolver_for(dns_server).txt("Bücher.test")).records == ("unicode",)
    assert ("xn--bcher-kva.test", "TXT") in dns_server.queries


async def test_a_name_no_query_can_carry_raises(dns_server: ZoneServer):
    res = resolver_for(dns_server)
    for bad in ("", "a..b", "x" * 64 + ".test"):
        with pytest.raises(InvalidName):
            await res.txt(bad)
    assert dns_server.queries == []


async def test_from_settings_uses_delivery_nameservers(dns_server: ZoneServer):
    dns_server.a("example.test", "192.0.2.1")
    settings = build_settings({"delivery": {"nameservers": [dns_server.nameserver],
                                            "connect_timeout": "2s"}}, env={})
    res = Resolver.from_settings(settings)
    assert (await res.a("example.test")).records == ("192.0.2.1",)


def test_names():
    assert to_ascii("Bücher.Test.") == "xn--bcher-kva.test"
    assert reverse_name("192.0.2.7") == "7.2.0.192.in-addr.arpa"
    assert reverse_name("192.0.2.7", "Zen.Example.") == "7.2.0.192.zen.example"
    assert reverse_name("2001:db8::1", "bl.test") == ".".join("1" + "0" * 23 + "8bd01002") + ".bl.test"
    assert reverse_name("2001:db8::1").endswith(".8.b.d.0.1.0.0.2.ip6.arpa")
    with pytest.raises(ValueError):
        reverse_name("not-an-ip")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
        ("ns.example.test", ("ns.example.test", 53)),
    ],
)
def test_nameserver_spelling(text: str, expected: tuple[str, int]):
    assert split_hostport(text, 53) == expected
