"""What the webadmin asks of the SQL store beyond plain accounts (a mixin
of SqlStore): a page of users matching a search, the usage per domain, and
the audit log of administrative changes. Every query is bounded by LIMIT,
so a list stays fast at tens of thousands of users or log rows."""
from __future__ import annotations

import time

from sqlalchemy import func, insert, or_, select

from ..interfaces import AuditEntry, DomainUsage, Forward, User
from . import schema as t


def _like(col, text: str):
    return func.lower(col).contains(text.lower(), autoescape=True)


class AdminStore:
    # Provided by SqlStore.
    _write: object
    _read: object
    _user_select: object
    _user: object

    def find_users(self, query: str = "", domain: str | None = None, *, offset: int = 0,
                   limit: int = 50) -> tuple[list[User], int]:
        cond = []
        if query:
            cond.append(or_(_like(t.users.c.address, query), _like(t.users.c.name, query)))
        if domain:
            cond.append(t.domains.c.name == domain)
        q = self._user_select().where(*cond).order_by(t.users.c.address)
        count = (select(func.count()).select_from(t.users)
                 .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(*cond))
        with self._read() as c:
            rows = c.execute(q.offset(max(0, offset)).limit(max(1, limit))).all()
            total = c.execute(count).scalar_one()
        return [self._user(r) for r in rows], int(total)

    def domain_usage(self) -> list[DomainUsage]:
        q = (select(t.domains.c.name, func.count(t.users.c.id),
                    func.coalesce(func.sum(t.users.c.used_bytes), 0))
             .select_from(t.domains)
             .outerjoin(t.users, t.users.c.domain_id == t.domains.c.id)
             .group_by(t.domains.c.name).order_by(t.domains.c.name))
        with self._read() as c:
            return [DomainUsage(n, int(u), int(b)) for n, u, b in c.execute(q)]

    def list_forwards(self) -> list[tuple[str, Forward]]:
        q = (select(t.users.c.address, t.forwards.c.user_id, t.forwards.c.target,
                    t.forwards.c.keep)
             .join(t.users, t.users.c.id == t.forwards.c.user_id).order_by(t.users.c.address))
        with self._read() as c:
            return [(r.address, Forward(r.user_id, r.target, bool(r.keep))) for r in c.execute(q)]

    def audit_add(self, *, actor: str, ip: str, action: str, target: str, old: str = "",
                  new: str = "", at: float | None = None) -> AuditEntry:
        at = time.time() if at is None else at
        row = dict(at=at, actor=actor, ip=ip, action=action, target=target, old=old, new=new)
        with self._write() as c:
            rid = c.execute(insert(t.audit).values(**row)).inserted_primary_key[0]
        return AuditEntry(id=int(rid), **row)

    def audit_list(self, *, actor: str = "", action: str = "", text: str = "",
                   since: float | None = None, offset: int = 0,
                   limit: int = 50) -> tuple[list[AuditEntry], int]:
        a = t.audit.c
        cond = []
        if actor:
            cond.append(_like(a.actor, actor))
        if action:
            cond.append(a.action.startswith(action, autoescape=True))
        if text:
            cond.append(or_(_like(a.target, text), _like(a.old, text), _like(a.new, text)))
        if since is not None:
            cond.append(a.at >= since)
        q = select(t.audit).where(*cond).order_by(a.id.desc())
        with self._read() as c:
            rows = c.execute(q.offset(max(0, offset)).limit(max(1, limit))).all()
            total = c.execute(select(func.count()).select_from(t.audit).where(*cond)).scalar_one()
        return [AuditEntry(r.id, r.at, r.actor, r.ip, r.action, r.target, r.old, r.new)
                for r in rows], int(total)
