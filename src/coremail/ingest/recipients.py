"""Where a recipient address leads: local mailboxes (users), remote
addresses (the outbound queue), or nowhere (unknown). Aliases and
auto-forwards are expanded here, once, for SMTP at RCPT/DATA time and for
the deliveragent; a cycle among them is detected rather than followed.
"Is this domain ours?" is asked for every address, so its answer is kept
for LocalDomains.TTL seconds, the same lifetime for every caller."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..mail.address import Address, AddressError, parse_address
from ..store.interfaces import Store, User

MAX_EXPANSION = 100  # targets of one address after expanding aliases


@dataclass
class Expansion:
    users: list[User] = field(default_factory=list)   # deliver into these INBOXes
    remote: list[str] = field(default_factory=list)   # queue for these addresses
    loop: bool = False                                  # a cycle was cut


V = TypeVar("V")


class TtlCache(Generic[V]):
    """Answers kept for ``ttl`` seconds, at most ``size`` of them (then all
    are dropped at once: cheaper than an LRU, and refilled within a second)."""

    def __init__(self, ttl: float, size: int = 10000):
        self.ttl = ttl
        self.size = size
        self._seen: dict[str, tuple[float, V]] = {}

    def get(self, key: str) -> V | None:
        hit = self._seen.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return None

    def put(self, key: str, value: V) -> None:
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = (time.monotonic(), value)

    def clear(self) -> None:
        self._seen.clear()


class LocalDomains:
    """Which domains are ours, remembered for TTL seconds: a domain added or
    removed is seen by SMTP and the deliveragent within that time."""

    TTL = 2.0

    def __init__(self, store: Store):
        self.store = store
        self._seen: TtlCache[bool] = TtlCache(self.TTL)

    def cached(self, domain: str) -> bool | None:
        """The remembered answer, or None: ask `is_local` (it reads the store)."""
        return self._seen.get(domain)

    def is_local(self, domain: str) -> bool:
        """Blocking (store) unless cached."""
        hit = self._seen.get(domain)
        if hit is not None:
            return hit
        ours = self.store.get_domain(domain) is not None
        self._seen.put(domain, ours)
        return ours


class Recipients:
    def __init__(self, store: Store, domains: LocalDomains | None = None):
        self.store = store
        self.domains = domains or LocalDomains(store)

    def is_local_domain(self, domain: str) -> bool:
        return self.domains.is_local(domain)

    def expand(self, addr: Address) -> Expansion:
        out = Expansion()
        seen_users: set[int] = set()
        seen_remote: set[str] = set()
        self._walk(addr, out, seen_users, seen_remote, chain=set(), depth=0)
        return out

    def _walk(self, addr: Address, out: Expansion, seen_users: set[int], seen_remote: set[str],
              chain: set[str], depth: int) -> None:
        key = addr.key
        if key in chain or depth > 10:
            out.loop = True
            return
        if len(out.users) + len(out.remote) >= MAX_EXPANSION:
            return
        if not self.is_local_domain(addr.domain):
            if str(addr).lower() not in seen_remote:
                seen_remote.add(str(addr).lower())
                out.remote.append(str(addr))
            return
        chain = chain | {key}
        user = self.store.get_user(key)
        if user is not None:
            fwd = self.store.get_forward(user.id)
            if fwd is None or fwd.keep:
                if user.id not in seen_users:
                    seen_users.add(user.id)
                    out.users.append(user)
            if fwd is not None:
                try:
                    self._walk(parse_address(fwd.target), out, seen_users, seen_remote,
                               chain, depth + 1)
                except AddressError:
                    pass
            return
        for target in self.store.alias_targets(key):
            try:
                self._walk(parse_address(target), out, seen_users, seen_remote, chain, depth + 1)
            except AddressError:
                continue
