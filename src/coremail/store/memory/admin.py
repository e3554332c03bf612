"""The webadmin's queries over the memory store (a mixin of MemoryStore),
mirroring store/sql/admin.py: a page of matching users, usage per domain,
and the audit log."""
from __future__ import annotations

import time

from ..interfaces import AuditEntry, DomainUsage, Forward, User


class MemoryAdmin:
    # Provided by MemoryStore.
    _lock: object
    _users: dict
    _domains: dict
    _audit: list
    _forwards: dict
    _next_id: object

    def find_users(self, query: str = "", domain: str | None = None, *, offset: int = 0,
                   limit: int = 50) -> tuple[list[User], int]:
        q = query.lower()
        with self._lock:
            hits = sorted((u for u in self._users.values()
                           if (not domain or u.domain == domain)
                           and (q in u.address.lower() or q in u.name.lower())),
                          key=lambda u: u.address)
        offset = max(0, offset)
        return hits[offset:offset + max(1, limit)], len(hits)

    def domain_usage(self) -> list[DomainUsage]:
        with self._lock:
            out = []
            for name in sorted(self._domains):
                mine = [u for u in self._users.values() if u.domain == name]
                out.append(DomainUsage(name, len(mine), sum(u.used_bytes for u in mine)))
            return out

    def list_forwards(self) -> list[tuple[str, Forward]]:
        with self._lock:
            return sorted(((self._users[f.user_id].address, f) for f in self._forwards.values()
                           if f.user_id in self._users), key=lambda x: x[0])

    def audit_add(self, *, actor: str, ip: str, action: str, target: str, old: str = "",
                  new: str = "", at: float | None = None) -> AuditEntry:
        with self._lock:
            e = AuditEntry(self._next_id("audit"), time.time() if at is None else at, actor, ip,
                           action, target, old, new)
            self._audit.append(e)
            return e

    def audit_list(self, *, actor: str = "", action: str = "", text: str = "",
                   since: float | None = None, offset: int = 0,
                   limit: int = 50) -> tuple[list[AuditEntry], int]:
        x = text.lower()
        with self._lock:
            hits = [e for e in reversed(self._audit)
                    if actor.lower() in e.actor.lower() and e.action.startswith(action)
                    and (not x or x in e.target.lower() or x in e.old.lower()
                         or x in e.new.lower())
                    and (since is None or e.at >= since)]
        offset = max(0, offset)
        return hits[offset:offset + max(1, limit)], len(hits)
