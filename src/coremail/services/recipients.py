"""Where a recipient address leads: local mailboxes (users), remote
addresses (the outbound queue), or nowhere (unknown). Aliases and
auto-forwards are expanded here, once, for SMTP at RCPT/DATA time and for
the deliveragent; a cycle among them is detected rather than followed."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..mail.address import Address, AddressError, parse_address
from ..store.interfaces import Store, User

MAX_EXPANSION = 100  # targets of one address after expanding aliases


@dataclass
class Expansion:
    users: list[User] = field(default_factory=list)   # deliver into these INBOXes
    remote: list[str] = field(default_factory=list)   # queue for these addresses
    loop: bool = False                                  # a cycle was cut


class Recipients:
    def __init__(self, store: Store):
        self.store = store

    def is_local_domain(self, domain: str) -> bool:
        return self.store.get_domain(domain) is not None

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
