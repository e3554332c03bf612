"""DNSBL (RBL/XBL): the client's address asked of every `antispam.dnsbl`
zone at once (RFC 5782: reversed IPv4 octets or IPv6 nibbles under the
zone, an A record in 127.0.0.0/8 means listed), through the one
dns.Resolver, whose cache keeps each answer for its TTL. Each zone gets
ZONE_TIMEOUT seconds; a zone that does not answer lists nobody. A listing
refuses (554 5.7.1 naming the zone and the address, telling the sender whom
to ask) or scores, by `antispam.dnsbl_action`. Authenticated submission is
never checked: the sender logged in, its address says nothing.
"""
from __future__ import annotations

import asyncio
import ipaddress
import re

from ..dns import Status, reverse_name
from .checks import CheckResult, Message, Score
from .verdict import Verdict

ZONE_TIMEOUT = 3.0     # seconds one zone may take
POINTS = 5.0           # per listing, with dnsbl_action = "score"


def test_name(zone: str) -> str:
    return "DNSBL_" + re.sub(r"[^A-Z0-9]+", "_", zone.upper()).strip("_")


def _listed(records: tuple) -> list[str]:
    """The answers that mean "listed": 127.0.0.0/8, but not 127.255.255.0/24,
    which Spamhaus and others use to say "query refused" (open resolvers)."""
    out = []
    for r in records:
        try:
            a = ipaddress.ip_address(r)
        except ValueError:
            continue
        if a.version == 4 and a in _LOOPBACK and a not in _REFUSED:
            out.append(str(a))
    return out


_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_REFUSED = ipaddress.ip_network("127.255.255.0/24")


class DnsblCheck:
    name = "dnsbl"
    kind = "spam"

    def __init__(self, ctx):
        self.ctx = ctx

    async def __call__(self, msg: Message) -> CheckResult | None:
        a = msg.settings.antispam
        if not a.dnsbl or msg.client.authenticated:
            return None
        try:
            ip = ipaddress.ip_address(msg.client.ip.split("%")[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        resolver = self.ctx.resolver()
        zones = list(dict.fromkeys(z.strip().strip(".").lower() for z in a.dnsbl if z.strip()))

        async def ask(zone: str):
            try:
                return await asyncio.wait_for(resolver.a(reverse_name(str(ip), zone)),
                                              ZONE_TIMEOUT)
            except (asyncio.TimeoutError, ValueError):
                return None

        answers = await asyncio.gather(*(ask(z) for z in zones))
        out = CheckResult()
        for zone, ans in zip(zones, answers):
            if ans is None or ans.status is not Status.OK:
                continue
            codes = _listed(ans.records)
            if not codes:
                continue
            words = f"client [{ip}] listed by {zone} ({', '.join(codes)})"
            if a.dnsbl_action == "reject":
                out.scores.append(Score(test_name(zone), 0.0, words))
                if out.verdict is None:
                    out.verdict = Verdict(
                        554, "5.7.1", f"client [{ip}] listed by {zone}; this server does not "
                                      f"take mail from addresses on that list: ask the "
                                      f"operator of {zone} to remove the listing")
            else:
                out.scores.append(Score(test_name(zone), POINTS, words))
        return out if out.scores else None
