"""Spelling names for DNS: IDNA to ASCII, reversed addresses, "host[:port]".

Kept apart from the resolver so a caller can check or build a name (a DNSBL
query, a PTR name, a relayhost) without asking anything on the network.
"""

from __future__ import annotations

import ipaddress

import idna


class InvalidName(ValueError):
    """A name that no DNS query can carry (empty label, label over 63 octets,
    bad IDNA); ``str()`` is the reason, or empty when the name says it all."""


def to_ascii(name: str) -> str:
    """``name`` lower-cased, without its final dot, IDNA-encoded (UTS #46)."""
    d = name.strip().rstrip(".").lower()
    if not d:
        raise InvalidName("empty name")
    if not d.isascii():
        try:
            d = idna.encode(d, uts46=True).decode("ascii")
        except idna.IDNAError as e:
            raise InvalidName(str(e)) from e
    if any(not label or len(label) > 63 for label in d.split(".")) or len(d) > 253:
        raise InvalidName("")
    return d


def reverse_name(ip: str, zone: str = "") -> str:
    """The name an address is looked up under: "4.3.2.1.in-addr.arpa" (or the
    ip6.arpa nibbles) for PTR; with ``zone``, the same labels under that zone
    ("4.3.2.1.zen.example"), as DNSBLs (RFC 5782) want. ValueError if ``ip``
    is not an address."""
    pointer = ipaddress.ip_address(ip.strip()).reverse_pointer
    if not zone:
        return pointer
    labels = pointer.rsplit(".", 2)[0]  # drop "in-addr.arpa" / "ip6.arpa"
    return f"{labels}.{to_ascii(zone)}"


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
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
