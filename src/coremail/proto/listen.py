"""Listening sockets and the session bookkeeping every protocol server shares:
the client's address as every protocol sees it (`peer_address`) and the
per-address count behind limits.max_connections_per_ip (`SessionTracker`).

Each worker process binds its own SO_REUSEPORT socket on the same address, so
the kernel spreads connections over the workers (both cores busy) and one
worker's crash does not close the port. Bind errors become `BindError` with a
sentence an administrator can act on.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ListenerSpec:
    name: str          # "smtp", "submission", "smtps", "pop3", ...
    port: int
    tls: bool = False  # implicit TLS from the first byte (465, 995, 993)


class BindError(Exception):
    pass


def bind_socket(address: str, port: int, name: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # IPPROTO_TCP explicitly: accepted sockets inherit it, and asyncio only
    # sets TCP_NODELAY when it sees it (else every multi-write reply waits ~40 ms
    # for the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise BindError(f"{name}: port {port} on {address} is already in use "
                            "by another program") from None
        if e.errno == errno.EACCES:
            raise BindError(f"{name}: permission denied on port {port} (ports below 1024 "
                            "need root or CAP_NET_BIND_SERVICE; `coremail config set "
                            f"listen.{name} {port + 2500 if port < 1024 else port}` "
                            "picks another)") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise BindError(f"{name}: address {address} is not on this machine "
                            "(check listen.address)") from None
        raise BindError(f"{name}: cannot listen on {address}:{port}: {e.strerror}") from None
    return sock


def address_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_address(peername) -> tuple[str, int]:
    """(ip, port) of a transport's peername. On a dual-stack listener
    (address "::") an IPv4 client arrives as ::ffff:a.b.c.d: it is a.b.c.d
    here, so loopback stays loopback and each address counts once."""
    if not peername:
        return "?", 0
    ip = str(peername[0])
    if ip.startswith("::ffff:"):
        try:
            mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        except ValueError:
            mapped = None
        if mapped is not None:
            ip = str(mapped)
    return ip, int(peername[1])


class SessionTracker:
    """The open sessions of one worker, so a graceful stop can say goodbye to
    each (421 / * BYE / -ERR) and wait for transactions in flight."""

    def __init__(self) -> None:
        self.sessions: set = set()
        self.per_ip: dict[str, int] = {}

    def add(self, session, ip: str) -> int:
        self.sessions.add(session)
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        return self.per_ip[ip]

    def count(self, ip: str) -> int:
        return self.per_ip.get(ip, 0)

    def over_limit(self, ip: str, limit: int) -> bool:
        """Has `ip` more than `limit` sessions open, the one just added
        included? Each protocol then refuses in its own words (421, * BYE, -ERR)."""
        return self.per_ip.get(ip, 0) > limit

    def remove(self, session, ip: str) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            n = self.per_ip.get(ip, 1) - 1
            if n <= 0:
                self.per_ip.pop(ip, None)
            else:
                self.per_ip[ip] = n

    async def drain(self, goodbye: Callable[[object], None], timeout: float) -> None:
        for s in list(self.sessions):
            goodbye(s)
        deadline = asyncio.get_running_loop().time() + timeout
        while self.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
