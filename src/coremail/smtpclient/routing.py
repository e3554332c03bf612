"""Where outbound mail for a domain goes: the relayhost, the MX hosts, or the implicit MX.

Owns the MX routing policy (RFC 5321 5.1 preference order, the implicit MX,
RFC 7505 null MX) over the shared resolver in ``coremail.dns``, and words
its answers as route errors carrying an RFC 3463 code.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from dataclasses import dataclass

from coremail import dns as cdns
from coremail.mail.domain_hint import suggest_domain


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


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Router:
    """MX routing over ``resolver``; ``rng`` shuffles MX hosts of equal preference."""

    def __init__(self, resolver: cdns.Resolver, *, rng: random.Random | None = None) -> None:
        self.dns = resolver
        self._rng = rng or random.Random()

    async def route(self, domain: str, *, relayhost: str = "", port: int = 25) -> Route:
        """The ordered hosts to deliver ``domain``'s mail to.

        ``relayhost`` ("host", "host:port", "[host]:port"; port 25 if absent)
        takes all mail and skips DNS: a name is left for the operating system
        to resolve at connect time, so /etc/hosts works. Otherwise MX hosts
        (RFC 5321 5.1) are tried at ``port``.
        """
        if relayhost:
            try:
                host, relay_port = cdns.split_hostport(relayhost, 25)
            except ValueError as e:
                raise TemporaryRouteError("4.3.5", f"bad relayhost setting: {e}") from e
            return Route(domain, relay_port, (RouteHost(host, 0, (host,)),), relayed=True)

        ascii_domain = _ascii_domain(domain)
        if ascii_domain.startswith("["):
            literal = _domain_literal(ascii_domain)
            return Route(ascii_domain, port, (RouteHost(literal, 0, (literal,)),))

        mx = await self.dns.mx(ascii_domain)
        if mx.temporary:
            raise TemporaryRouteError("4.4.3", f"DNS lookup of MX for {ascii_domain} "
                                      f"failed, will retry ({_why(mx)})")
        if mx.status is cdns.Status.NXDOMAIN:
            hint = suggest_domain(ascii_domain)
            extra = f" - did you mean {hint}?" if hint else ""
            raise PermanentRouteError("5.1.2", f"domain {ascii_domain} does not exist{extra}")

        if mx.status is cdns.Status.NODATA:
            # RFC 5321 5.1: no MX means the domain itself is the mail host.
            addrs = await self.dns.addresses(ascii_domain)
            if addrs.temporary:
                raise TemporaryRouteError("4.4.3", f"DNS lookup of {ascii_domain} failed, "
                                          f"will retry ({_why(addrs)})")
            if not addrs.records:
                raise PermanentRouteError("5.1.2", f"domain {ascii_domain} has no mail "
                                          "server (no MX and no address records)")
            return Route(ascii_domain, port, (RouteHost(ascii_domain, 0, addrs.records),),
                         implicit_mx=True)

        names = [(r.preference, r.exchange) for r in mx.records if r.exchange]
        if not names:
            # RFC 7505: a lone "0 ." says the domain takes no mail at all.
            raise PermanentRouteError("5.1.10", f"domain {ascii_domain} does not accept "
                                      "mail (null MX)")
        self._rng.shuffle(names)
        names.sort(key=lambda pn: pn[0])  # stable: equal preferences stay shuffled
        return await self._resolve_mx_hosts(ascii_domain, port, names)

    async def _resolve_mx_hosts(self, domain: str, port: int,
                                names: list[tuple[int, str]]) -> Route:
        results = await asyncio.gather(*(self._addresses(n) for _, n in names))
        hosts: list[RouteHost] = []
        temporary: list[str] = []
        for (pref, name), result in zip(names, results):
            if result is None:
                temporary.append(name)
            elif result:
                hosts.append(RouteHost(name, pref, result))
        if hosts:
            return Route(domain, port, tuple(hosts))
        if temporary:
            raise TemporaryRouteError("4.4.3", f"DNS lookup of the mail servers of {domain} "
                                      f"({', '.join(temporary)}) failed, will retry")
        # Every MX name is dangling: usually a fixable slip on their side, so retry.
        raise TemporaryRouteError("4.4.4", f"none of the mail servers of {domain} "
                                  f"({', '.join(n for _, n in names)}) has an address")

    async def _addresses(self, host: str) -> tuple[str, ...] | None:
        """The addresses of an MX host, () for none, None when DNS failed for now."""
        try:
            answer = await self.dns.addresses(host)
        except cdns.InvalidName:
            return ()  # an MX name no query can carry has no address either
        return None if answer.temporary else answer.records


def _why(answer: cdns.Answer) -> str:
    return f"{answer.name}/{answer.rdtype}: {answer.reason}"


def _ascii_domain(domain: str) -> str:
    d = domain.strip().rstrip(".").lower()
    if d.startswith("["):
        return d
    if not d:
        raise PermanentRouteError("5.1.2", "empty destination domain")
    try:
        return cdns.to_ascii(d)
    except cdns.InvalidName as e:
        detail = f": {e}" if str(e) else ""
        raise PermanentRouteError("5.1.2", f"invalid domain name {domain!r}{detail}") from e


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
