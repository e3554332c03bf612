"""The one DNS resolver of coremail: asyncio, dnspython underneath, a cache that
keeps each answer no longer than its TTL.

Every look-up comes back as an ``Answer`` whose ``status`` tells "no such
domain" (NXDOMAIN) from "no records of that type" (NODATA) from "ask again
later" (SERVFAIL, REFUSED, a timeout): outbound routing, the filters and
``coremail doctor`` each put those into their own words. DNS trouble never
raises; only a name that cannot be asked at all does (``InvalidName``).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from .names import reverse_name, split_hostport, to_ascii

if TYPE_CHECKING:
    from coremail.config import Settings

MAX_NEGATIVE_TTL = 60  # seconds a "does not exist" answer is trusted, at most
MAX_TTL = 86400
DEFAULT_TIMEOUT = 5.0
_CACHE_SIZE = 4096


class Status(enum.Enum):
    OK = "ok"                # records found
    NXDOMAIN = "nxdomain"    # the name does not exist
    NODATA = "nodata"        # the name exists, without records of this type
    TEMPFAIL = "tempfail"    # SERVFAIL, REFUSED, no reply in time: try again later


@dataclass(frozen=True, order=True)
class MX:
    preference: int
    exchange: str  # lower-case, no final dot; "" for the root (RFC 7505 null MX)


@dataclass(frozen=True)
class Answer:
    """One look-up's outcome. ``records`` by type: A/AAAA address strings, MX
    ``MX``, TXT one string per record (its character-strings joined, as SPF
    and DKIM read them), PTR host names; other types their zone-file text.
    ``reason`` says what went wrong for TEMPFAIL."""

    name: str
    rdtype: str
    status: Status
    records: tuple = ()
    reason: str = ""

    @property
    def temporary(self) -> bool:
        return self.status is Status.TEMPFAIL


def _value(rdtype: str, rdata) -> object:
    if rdtype in ("A", "AAAA"):
        return rdata.address
    if rdtype == "MX":
        exchange = "" if rdata.exchange == dns.name.root else _host(rdata.exchange)
        return MX(rdata.preference, exchange)
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if rdtype == "PTR":
        return _host(rdata.target)
    return rdata.to_text()


def _host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _negative_ttl(response: dns.message.Message | None) -> float:
    # RFC 2308: the SOA in the authority section says how long "no" holds;
    # without one the answer is not cached at all.
    if response is None:
        return 0
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return min(rrset.ttl, rrset[0].minimum, MAX_NEGATIVE_TTL)
    return 0


class Resolver:
    """``nameservers``: ["127.0.0.1:5353", "[::1]:53", "9.9.9.9"]; empty uses
    the system's resolv.conf. ``timeout`` bounds each look-up in seconds.
    ``clock`` is for the cache (tests move it by hand)."""

    def __init__(self, nameservers: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if nameservers:
            res = dns.asyncresolver.Resolver(configure=False)
            servers = [split_hostport(ns, 53) for ns in nameservers]
            res.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in servers]
        else:
            try:
                res = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                res = dns.asyncresolver.Resolver(configure=False)
                res.nameservers = ["127.0.0.1"]
        res.timeout = timeout
        res.lifetime = timeout
        self._res = res
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Answer]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Resolver:
        """The resolver ``delivery.nameservers`` asks for; a look-up waits no
        longer than the connect time-out, and never more than 10 seconds."""
        d = settings.delivery
        return cls(d.nameservers, timeout=min(10.0, float(d.connect_timeout)))

    def _remember(self, answer: Answer, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._cache) >= _CACHE_SIZE:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            while len(self._cache) >= _CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
        self._cache[(answer.name, answer.rdtype)] = (self._clock() + min(ttl, MAX_TTL), answer)

    async def lookup(self, name: str, rdtype: str) -> Answer:
        """The ``rdtype`` records of ``name`` (IDNA is encoded here)."""
        qname, rdtype = to_ascii(name), rdtype.upper()
        hit = self._cache.get((qname, rdtype))
        if hit and hit[0] > self._clock():
            return hit[1]
        try:
            got = await self._res.resolve(dns.name.from_text(qname), rdtype, search=False,
                                          raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as e:
            responses = list(e.responses().values()) if e.kwargs.get("responses") else []
            answer = Answer(qname, rdtype, Status.NXDOMAIN)
            self._remember(answer, _negative_ttl(responses[0] if responses else None))
            return answer
        except dns.exception.DNSException as e:
            # Every nameserver failed or was silent; also YXDOMAIN, malformed
            # replies and the like: nothing usable yet.
            return Answer(qname, rdtype, Status.TEMPFAIL, reason=str(e))
        if got.rrset is None:
            answer = Answer(qname, rdtype, Status.NODATA)
            self._remember(answer, _negative_ttl(got.response))
            return answer
        answer = Answer(qname, rdtype, Status.OK, tuple(_value(rdtype, r) for r in got.rrset))
        self._remember(answer, got.expiration - time.time())
        return answer

    async def a(self, name: str) -> Answer:
        return await self.lookup(name, "A")

    async def aaaa(self, name: str) -> Answer:
        return await self.lookup(name, "AAAA")

    async def mx(self, name: str) -> Answer:
        return await self.lookup(name, "MX")

    async def txt(self, name: str) -> Answer:
        return await self.lookup(name, "TXT")

    async def ptr(self, ip: str) -> Answer:
        """The host names ``ip`` (v4 or v6) points back to."""
        return await self.lookup(reverse_name(ip), "PTR")

    async def addresses(self, name: str) -> Answer:
        """A then AAAA records as one answer (rdtype "A+AAAA"): OK when either
        has some; else TEMPFAIL if one failed, NXDOMAIN if the name does not
        exist, NODATA if it has no address."""
        qname = to_ascii(name)
        both = await asyncio.gather(self.a(qname), self.aaaa(qname))
        records = both[0].records + both[1].records
        failed = [a for a in both if a.temporary]
        if records:
            status, reason = Status.OK, ""
        elif failed:
            status, reason = Status.TEMPFAIL, failed[0].reason
        elif any(a.status is Status.NXDOMAIN for a in both):
            status, reason = Status.NXDOMAIN, ""
        else:
            status, reason = Status.NODATA, ""
        return Answer(qname, "A+AAAA", status, records, reason)
