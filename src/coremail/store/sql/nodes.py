"""What several nodes share through the database (a mixin of SqlStore):
leases (named locks with an expiry: the POP3 maildrop lock between hosts),
the failed logins of the login throttle, the nodes' heartbeats, the files
every node copies into its conf/, web sessions, and folder change
notifications.

Notifications: on PostgreSQL a trigger on `folders` (migration 0011) sends
NOTIFY coremail_folders with the folder id at the commit of any change to
its modseq or uidnext, whichever node made it; `folder_changes()` opens a
dedicated autocommit connection that LISTENs. SQLite has no such channel:
None, and IMAP IDLE keeps polling `folder_versions` on its one host.
"""
from __future__ import annotations

import json
import time
from typing import Sequence

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..interfaces import NodeState
from . import schema as t

CHANNEL = "coremail_folders"


class PgFolderChanges:
    """LISTEN coremail_folders on a connection of its own (psycopg 3)."""

    def __init__(self, engine):
        import psycopg
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self._conn = psycopg.connect(*cargs, **cparams, autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> set[int]:
        out: set[int] = set()
        for n in self._conn.notifies(timeout=timeout, stop_after=1):
            out.add(int(n.payload))
        # whatever else already arrived, without waiting again
        for n in self._conn.notifies(timeout=0):
            out.add(int(n.payload))
        return out

    def close(self) -> None:
        self._conn.close()


class NodeStore:
    # Provided by SqlStore.
    _write: object
    _read: object
    engine: object

    @property
    def shared(self) -> bool:
        return self.engine.dialect.name != "sqlite"

    # ------------------------------------------------------------- leases
    def lease_acquire(self, name: str, owner: str, until: float,
                      now: float | None = None) -> bool:
        now = time.time() if now is None else now
        le = t.leases
        with self._write() as c:
            took = c.execute(update(le).where(le.c.name == name, or_(
                le.c.owner == owner, le.c.until < now)).values(owner=owner, until=until)).rowcount
            if took:
                return True
            if c.execute(select(le.c.name).where(le.c.name == name)).first() is not None:
                return False
        try:
            with self._write() as c:
                c.execute(insert(le).values(name=name, owner=owner, until=until))
            return True
        except IntegrityError:
            return False    # another node inserted it between our two transactions

    def lease_renew(self, owner: str, until: float) -> int:
        with self._write() as c:
            return c.execute(update(t.leases).where(t.leases.c.owner == owner)
                             .values(until=until)).rowcount

    def lease_release(self, owner: str, name: str | None = None) -> int:
        q = delete(t.leases).where(t.leases.c.owner == owner)
        if name is not None:
            q = q.where(t.leases.c.name == name)
        with self._write() as c:
            return c.execute(q).rowcount

    # ------------------------------------------------------ failed logins
    def auth_failure_add(self, ip: str, at: float, forget_before: float) -> None:
        a = t.auth_failures
        with self._write() as c:
            c.execute(delete(a).where(a.c.at < forget_before))
            c.execute(insert(a).values(ip=ip, at=at))

    def auth_failures(self, ip: str, since: float) -> list[float]:
        a = t.auth_failures
        with self._read() as c:
            return [float(x) for x in c.execute(
                select(a.c.at).where(a.c.ip == ip, a.c.at >= since).order_by(a.c.at)).scalars()]

    def auth_failures_clear(self) -> int:
        with self._write() as c:
            return c.execute(delete(t.auth_failures)).rowcount

    # -------------------------------------------------------------- nodes
    def node_beat(self, hostname: str, started: float, services: Sequence[dict],
                  now: float | None = None) -> None:
        now = time.time() if now is None else now
        n = t.nodes
        values = dict(started=started, heartbeat=now, services=json.dumps(list(services)))
        with self._write() as c:
            if not c.execute(update(n).where(n.c.hostname == hostname).values(**values)).rowcount:
                c.execute(insert(n).values(hostname=hostname, **values))

    def node_list(self) -> list[NodeState]:
        with self._read() as c:
            rows = c.execute(select(t.nodes).order_by(t.nodes.c.hostname)).all()
        return [NodeState(r.hostname, float(r.started), float(r.heartbeat),
                          tuple(json.loads(r.services or "[]"))) for r in rows]

    # ------------------------------------------------------- shared files
    def shared_file_put(self, name: str, content: bytes, updated: float) -> None:
        f = t.shared_files
        with self._write() as c:
            c.execute(delete(f).where(f.c.name == name))
            c.execute(insert(f).values(name=name, content=content, updated=updated))

    def shared_files(self) -> dict[str, tuple[bytes, float]]:
        f = t.shared_files
        with self._read() as c:
            return {r.name: (bytes(r.content), float(r.updated))
                    for r in c.execute(select(f.c.name, f.c.content, f.c.updated))}

    # ------------------------------------------------------- web sessions
    def web_session_put(self, key: str, user_id: int, csrf: str, expires: float,
                        now: float) -> None:
        w = t.web_sessions
        with self._write() as c:
            c.execute(delete(w).where(or_(w.c.expires < now, w.c.key == key)))
            c.execute(insert(w).values(key=key, user_id=user_id, csrf=csrf, expires=expires))

    def web_session_get(self, key: str) -> tuple[int, str, float] | None:
        w = t.web_sessions
        with self._read() as c:
            r = c.execute(select(w.c.user_id, w.c.csrf, w.c.expires).where(w.c.key == key)).first()
        return (int(r.user_id), r.csrf, float(r.expires)) if r else None

    def web_session_delete(self, key: str) -> None:
        with self._write() as c:
            c.execute(delete(t.web_sessions).where(t.web_sessions.c.key == key))

    # ------------------------------------------------------ notifications
    def folder_changes(self) -> PgFolderChanges | None:
        if self.engine.dialect.name != "postgresql":
            return None
        return PgFolderChanges(self.engine)
