"""Where outbound mail for a domain goes: the relayhost, the MX hosts, or the implicit MX.

Owns outbound DNS: MX and A/AAAA look-ups through dnspython with a small cache
that keeps each answer no longer than its TTL, so a changed MX is used
without a restart. Failures come out as route errors carrying an RFC 3463 code.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import idna

from coremail.mail.domain_hint import suggest_domain

MAX_NEGATIVE_TTL = 60  # seconds a "does not exist" answer is trusted, at most
MAX_TTL = 86400
_CACHE_SIZE = 4096


class RouteError(Exception):
    """No way to the domain; ``status`` is the enhanced code, ``text`` the reason."""

    permanent = False

    def __init__(self, status: str, text: str) -> None:
        super().__init__(f"{status} {text}")
        self.status = status
        self.text = text


class PermanentRouteError(RouteError):
    """Retrying will not help (no such domain, null MX): bounce now."""

    permanent = True


class TemporaryRouteError(RouteError):
    """DNS failed or gave nothing usable for now: keep the message and retry."""


class DNSTemporaryError(Exception):
    """SERVFAIL, REFUSED or no answer in time from every nameserver."""


@dataclass(frozen=True)
class Target:
    """One place to connect to: ``hostname`` is for TLS and reports, ``address`` for the socket."""

    hostname: str
    address: str
    port: int
    preference: int


@dataclass(frozen=True)
class RouteHost:
    name: str
    preference: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """Hosts to try, best first. ``relayed``: all goes to the relayhost;
    ``implicit_mx``: the domain had no MX and its own address is used."""

    domain: str
    port: int
    hosts: tuple[RouteHost, ...]
    relayed: bool = False
    implicit_mx: bool = False

    def targets(self) -> list[Target]:
        return [Target(h.name, a, self.port, h.preference) for h in self.hosts for a in h.addresses]


def _split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """ "host", "host:port", "[host]:port", "[::1]:53" or a bare IPv6 address."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"not host[:port]: {value!r}")
    return host, int(port) if port else default_port


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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
    """An asyncio DNS resolver with a TTL-honouring cache.

    ``nameservers``: ["127.0.0.1:5353", "[::1]:53", "9.9.9.9"]; empty uses the
    system's resolv.conf. ``timeout`` bounds each look-up in seconds.
    """

    def __init__(self, nameservers: Sequence[str] = (), timeout: float = 5.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        if nameservers:
            res = dns.asyncresolver.Resolver(configure=False)
            servers = [_split_hostport(ns, 53) for ns in nameservers]
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
        self._rng = rng or random.Random()
        self._cache: dict[tuple[str, str], tuple[float, tuple, bool]] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    def _remember(self, key: tuple[str, str], ttl: float, records: tuple, nxdomain: bool) -> None:
        if ttl <= 0:
            return
        if len(self._cache) >= _CACHE_SIZE:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            while len(self._cache) >= _CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
        self._cache[key] = (self._clock() + min(ttl, MAX_TTL), records, nxdomain)

    async def lookup(self, name: str, rdtype: str) -> tuple[tuple, bool]:
        """(records, nxdomain) for an ASCII name; raises DNSTemporaryError."""
        key = (name.lower().rstrip("."), rdtype)
        hit = self._cache.get(key)
        if hit and hit[0] > self._clock():
            return hit[1], hit[2]
        qname = dns.name.from_text(key[0] or ".")
        try:
            answer = await self._res.resolve(qname, rdtype, search=False,
                                             raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as e:
            responses = list(e.responses().values()) if e.kwargs.get("responses") else []
            self._remember(key, _negative_ttl(responses[0] if responses else None), (), True)
            return (), True
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as e:
            raise DNSTemporaryError(f"{key[0]}/{rdtype}: {e}") from e
        except dns.exception.DNSException as e:
            # YXDOMAIN, malformed replies and the like: nothing usable yet.
            raise DNSTemporaryError(f"{key[0]}/{rdtype}: {e}") from e
        if answer.rrset is None:
            self._remember(key, _negative_ttl(answer.response), (), False)
            return (), False
        records = tuple(answer.rrset)
        self._remember(key, answer.expiration - time.time(), records, False)
        return records, False

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host``; [] if it has none or does not exist."""
        results = await asyncio.gather(self.lookup(host, "A"), self.lookup(host, "AAAA"),
                                       return_exceptions=True)
        found: list[str] = []
        failed: BaseException | None = None
        for result in results:
            if isinstance(result, DNSTemporaryError):
                failed = result
            elif isinstance(result, BaseException):
                raise result
            else:
                found += [r.address for r in result[0]]
        if not found and failed:
            raise failed
        return found

    async def route(self, domain: str, *, relayhost: str = "", port: int = 25) -> Route:
        """The ordered hosts to deliver ``domain``'s mail to.

        ``relayhost`` ("host", "host:port", "[host]:port"; port 25 if absent)
        takes all mail and skips DNS: a name is left for the operating system
        to resolve at connect time, so /etc/hosts works. Otherwise MX hosts
        (RFC 5321 5.1) are tried at ``port``.
        """
        if relayhost:
            try:
                host, relay_port = _split_hostport(relayhost, 25)
            except ValueError as e:
                raise TemporaryRouteError("4.3.5", f"bad relayhost setting: {e}") from e
            return Route(domain, relay_port, (RouteHost(host, 0, (host,)),), relayed=True)

        ascii_domain = _ascii_domain(domain)
        if ascii_domain.startswith("["):
            literal = _domain_literal(ascii_domain)
            return Route(ascii_domain, port, (RouteHost(literal, 0, (literal,)),))

        try:
            records, nxdomain = await self.lookup(ascii_domain, "MX")
        except DNSTemporaryError as e:
            raise TemporaryRouteError("4.4.3", f"DNS lookup of MX for {ascii_domain} "
                                      f"failed, will retry ({e})") from e
        if nxdomain:
            hint = suggest_domain(ascii_domain)
            extra = f" - did you mean {hint}?" if hint else ""
            raise PermanentRouteError("5.1.2", f"domain {ascii_domain} does not exist{extra}")

        if not records:
            # RFC 5321 5.1: no MX means the domain itself is the mail host.
            try:
                addrs = await self.addresses(ascii_domain)
            except DNSTemporaryError as e:
                raise TemporaryRouteError("4.4.3", f"DNS lookup of {ascii_domain} failed, "
                                          f"will retry ({e})") from e
            if not addrs:
                raise PermanentRouteError("5.1.2", f"domain {ascii_domain} has no mail "
                                          "server (no MX and no address records)")
            return Route(ascii_domain, port, (RouteHost(ascii_domain, 0, tuple(addrs)),),
                         implicit_mx=True)

        mxs = [(r.preference, r.exchange) for r in records]
        real = [(pref, name) for pref, name in mxs if name != dns.name.root]
        if not real:
            # RFC 7505: a lone "0 ." says the domain takes no mail at all.
            raise PermanentRouteError("5.1.10", f"domain {ascii_domain} does not accept "
                                      "mail (null MX)")
        names = [(pref, name.to_text(omit_final_dot=True).lower()) for pref, name in real]
        self._rng.shuffle(names)
        names.sort(key=lambda pn: pn[0])  # stable: equal preferences stay shuffled
        return await self._resolve_mx_hosts(ascii_domain, port, names)

    async def _resolve_mx_hosts(self, domain: str, port: int,
                                names: list[tuple[int, str]]) -> Route:
        results = await asyncio.gather(*(self.addresses(n) for _, n in names),
                                       return_exceptions=True)
        hosts: list[RouteHost] = []
        temporary: list[str] = []
        for (pref, name), result in zip(names, results):
            if isinstance(result, DNSTemporaryError):
                temporary.append(name)
            elif isinstance(result, BaseException):
                raise result
            elif result:
                hosts.append(RouteHost(name, pref, tuple(result)))
        if hosts:
            return Route(domain, port, tuple(hosts))
        if temporary:
            raise TemporaryRouteError("4.4.3", f"DNS lookup of the mail servers of {domain} "
                                      f"({', '.join(temporary)}) failed, will retry")
        # Every MX name is dangling: usually a fixable slip on their side, so retry.
        raise TemporaryRouteError("4.4.4", f"none of the mail servers of {domain} "
                                  f"({', '.join(n for _, n in names)}) has an address")


def _ascii_domain(domain: str) -> str:
    d = domain.strip().rstrip(".").lower()
    if d.startswith("["):
        return d
    if not d:
        raise PermanentRouteError("5.1.2", "empty destination domain")
    if d.isascii():
        if any(not label or len(label) > 63 for label in d.split(".")) or len(d) > 253:
            raise PermanentRouteError("5.1.2", f"invalid domain name {domain!r}")
        return d
    try:
        return idna.encode(d, uts46=True).decode("ascii")
    except idna.IDNAError as e:
        raise PermanentRouteError("5.1.2", f"invalid domain name {domain!r}: {e}") from e


def _domain_literal(literal: str) -> str:
    """The address inside "[1.2.3.4]" or "[IPv6:2001:db8::1]" (RFC 5321 4.1.3)."""
    inner = literal.strip("[]")
    if inner.lower().startswith("ipv6:"):
        inner = inner[5:]
        ok = _is_ip(inner) and ":" in inner
    else:
        ok = _is_ip(inner) and ":" not in inner
    if not ok:
        raise PermanentRouteError("5.1.2", f"invalid address literal {literal}")
    return inner


async def route(domain: str, *, relayhost: str, port: int, resolver: Resolver) -> Route:
    """Module-level spelling of :meth:`Resolver.route`."""
    return await resolver.route(domain, relayhost=relayhost, port=port)
