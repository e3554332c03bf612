"""A small real DNS server for tests: a mutable zone on a free loopback port.

Answers over UDP and TCP on 127.0.0.1 from ``ZoneServer.zone``; unknown names
get NXDOMAIN, and a name can be made to SERVFAIL or to go unanswered.
Use it through the ``dns_server`` fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from dnslib import QTYPE, RCODE, RR, SOA, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer

__all__ = ["Records", "ZoneServer", "dns_server"]


@dataclass
class Records:
    """The values of one name and type, in zone-file syntax ("10 mx.example.test.")."""

    values: list[str]
    ttl: int | None = None  # None: the server's default_ttl


@dataclass
class _Faults:
    servfail: set[tuple[str, str | None]] = field(default_factory=set)
    timeout: set[tuple[str, str | None]] = field(default_factory=set)


class _Drop(DNSError):
    """Raised to send no reply at all; the handler swallows DNSError."""


class _Handler(DNSHandler):
    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        if reply is None:
            raise _Drop("dropped on purpose")
        return reply.pack()


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


class ZoneServer:
    """``zone[name][rtype] = Records([...], ttl)``; names without trailing dot.

    Edit the zone directly or with the helpers; changes apply to the next
    query. ``queries`` records every (name, type) asked, in order.
    """

    def __init__(self, *, default_ttl: int = 300, negative_ttl: int = 30) -> None:
        self.zone: dict[str, dict[str, Records]] = {}
        self.default_ttl = default_ttl
        self.negative_ttl = negative_ttl  # the SOA minimum sent with "no such" answers
        self.queries: list[tuple[str, str]] = []
        self._faults = _Faults()
        self._lock = threading.Lock()
        self._servers: list[DNSServer] = []
        self.port = 0

    # -- editing the zone -------------------------------------------------

    def set(self, name: str, rtype: str, *values: str, ttl: int | None = None) -> None:
        """Replace the ``rtype`` records of ``name``; no values removes them."""
        with self._lock:
            types = self.zone.setdefault(_norm(name), {})
            if values:
                types[rtype.upper()] = Records(list(values), ttl)
            else:
                types.pop(rtype.upper(), None)

    def mx(self, name: str, *pairs: tuple[int, str], ttl: int | None = None) -> None:
        self.set(name, "MX", *(f"{pref} {host.rstrip('.')}." for pref, host in pairs), ttl=ttl)

    def null_mx(self, name: str, ttl: int | None = None) -> None:
        self.set(name, "MX", "0 .", ttl=ttl)

    def a(self, name: str, *addresses: str, ttl: int | None = None) -> None:
        self.set(name, "A", *addresses, ttl=ttl)

    def aaaa(self, name: str, *addresses: str, ttl: int | None = None) -> None:
        self.set(name, "AAAA", *addresses, ttl=ttl)

    def txt(self, name: str, *texts: str, ttl: int | None = None) -> None:
        self.set(name, "TXT", *('"' + t.replace('"', '\\"') + '"' for t in texts), ttl=ttl)

    def delete(self, name: str) -> None:
        """Forget ``name`` entirely, so it answers NXDOMAIN."""
        with self._lock:
            self.zone.pop(_norm(name), None)

    def servfail(self, name: str, rtype: str | None = None) -> None:
        """Answer SERVFAIL for ``name`` (only for ``rtype`` if given)."""
        with self._lock:
            self._faults.servfail.add((_norm(name), rtype and rtype.upper()))

    def timeout(self, name: str, rtype: str | None = None) -> None:
        """Never answer queries for ``name`` (only for ``rtype`` if given)."""
        with self._lock:
            self._faults.timeout.add((_norm(name), rtype and rtype.upper()))

    def heal(self) -> None:
        """Drop every SERVFAIL and timeout set before."""
        with self._lock:
            self._faults = _Faults()

    # -- answering -------------------------------------------------------------

    def _soa(self, qname: str) -> RR:
        apex = ".".join(qname.split(".")[-2:]) + "."
        return RR(apex, QTYPE.SOA, ttl=self.negative_ttl,
                  rdata=SOA(f"ns.{apex}", f"hostmaster.{apex}",
                            (1, 3600, 600, 86400, self.negative_ttl)))

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord | None:
        qname = _norm(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((qname, qtype))
            if {(qname, None), (qname, qtype)} & self._faults.timeout:
                return None
            reply = request.reply()
            if {(qname, None), (qname, qtype)} & self._faults.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            types = self.zone.get(qname)
            if types and qtype in types:
                recs = types[qtype]
                ttl = self.default_ttl if recs.ttl is None else recs.ttl
                for value in recs.values:
                    reply.add_answer(*RR.fromZone(f"{qname}. {ttl} IN {qtype} {value}"))
                return reply
            exists = bool(types) or any(n.endswith("." + qname) for n in self.zone)
            if not exists:
                reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._soa(qname))
            return reply

    # -- running -----------------------------------------------------------------

    @property
    def nameserver(self) -> str:
        """The "host:port" string for ``delivery.nameservers``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> ZoneServer:
        logger = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        for _ in range(50):
            udp = DNSServer(self, address="127.0.0.1", port=0, logger=logger, handler=_Handler)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self, address="127.0.0.1", port=port, tcp=True,
                                logger=logger, handler=_Handler)
            except OSError:  # TCP side of that port is taken: pick another
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                # A short poll keeps stop() (and so each test's teardown) quick.
                threading.Thread(target=server.server.serve_forever,
                                 kwargs={"poll_interval": 0.02}, daemon=True).start()
            return self
        raise RuntimeError("no free port with both UDP and TCP for the test DNS server")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> ZoneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def dns_server() -> Iterator[ZoneServer]:
    """A running ZoneServer with an empty zone; ``dns_server.nameserver`` is its address."""
    with ZoneServer() as server:
        yield server
