"""SqlStore: the Store interface over SQLAlchemy Core (SQLite or PostgreSQL).

Write transactions are short and IMMEDIATE (SQLite) so two writers never
deadlock on a lock upgrade. This module holds the connection handling,
domains, users, aliases, forwards, folders and settings; messages (delivery,
flags, quota) are in messages.py and the outbound queue in queue.py.
"""
from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator, Sequence

from sqlalchemy import Connection, case, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..blobs import BlobStore
from ..interfaces import (SPECIAL_FOLDERS, Alias, AlreadyExists, Domain, Folder, Forward, NotFound,
                          StorageFull, StoreError, User)
from . import schema as t
from .admin import AdminStore
from .engine import make_engine, migrate, sqlite_url, write_lock
from .bayes import BayesStore
from .messages import MessageStore
from .nodes import NodeStore
from .queue import QueueStore
from .filters import FilterStore
from .trace import TraceStore
from .views import ViewStore


SQLITE_FULL = 13          # "database or disk is full"
PG_DISK_FULL = "53100"    # SQLSTATE disk_full


def _disk_full(e: DBAPIError) -> bool:
    orig = e.orig
    code = getattr(orig, "sqlite_errorcode", None)   # an extended code: the primary is its low byte
    return ((code is not None and code & 0xFF == SQLITE_FULL)
            or PG_DISK_FULL in (getattr(orig, "pgcode", None), getattr(orig, "sqlstate", None)))


def _durable_again(conn: Connection) -> None:
    """Back to fsync on commit before the connection serves mail again; a
    connection that cannot be set back is dropped from the pool."""
    try:
        conn.connection.dbapi_connection.execute("PRAGMA synchronous=FULL")
    except Exception:  # noqa: BLE001
        conn.invalidate()


class SqlStore(MessageStore, QueueStore, ViewStore, FilterStore, BayesStore, TraceStore,
               AdminStore, NodeStore):
    def __init__(self, url: str, blob_root: Path):
        self.engine = make_engine(url)
        self.blobs = BlobStore(blob_root)
        self._write_lock = write_lock(self.engine) or nullcontext()
        self._trace_keyed: set[tuple[str, str]] = set()   # see trace.py

    @classmethod
    def open_home(cls, data_dir: Path, url: str = "", blobs: Path | None = None) -> "SqlStore":
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(url or sqlite_url(data_dir / "coremail.db"), blobs or data_dir / "blobs")

    def migrate(self) -> None:
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction. ``durable=False`` (the message trace) lets an
        SQLite commit skip its fsync, so it holds the write lock for less
        time; the next durable commit syncs those pages too."""
        try:
            with self._write_lock, self.engine.connect() as conn:
                lazy = not durable and conn.dialect.name == "sqlite"
                if lazy:
                    conn.connection.dbapi_connection.execute("PRAGMA synchronous=NORMAL")
                try:
                    conn.execution_options(immediate=True)
                    with conn.begin():
                        yield conn
                finally:
                    if lazy:
                        _durable_again(conn)
        except DBAPIError as e:
            # The database could not grow (SQLite's WAL or file, PostgreSQL's
            # tablespace): the transaction is rolled back, and callers must
            # see the same temporary StorageFull as a blob write on a full
            # disk (SMTP 452 4.3.1, IMAP NO), not a raw driver error.
            if _disk_full(e):
                raise StorageFull("the server's storage is full; please try again later") from e
            raise

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    # Every write to a mailbox first locks its user's row, users in id order,
    # so two PostgreSQL writers (row locks taken as they go) can never wait
    # for each other in a cycle. SQLite's IMMEDIATE transaction already holds
    # the whole database: nothing to do there.
    @staticmethod
    def _lock_users(c: Connection, user_ids) -> None:
        ids = sorted(set(user_ids))
        if ids and c.dialect.name != "sqlite":
            c.execute(select(t.users.c.id).where(t.users.c.id.in_(ids))
                      .order_by(t.users.c.id).with_for_update())

    def _lock_folder_owners(self, c: Connection, folder_ids) -> None:
        if c.dialect.name != "sqlite":
            self._lock_users(c, c.execute(select(t.folders.c.user_id).where(
                t.folders.c.id.in_(list(folder_ids)))).scalars())

    # ------------------------------------------------------------ domains
    def add_domain(self, name: str) -> Domain:
        try:
            with self._write() as c:
                r = c.execute(insert(t.domains).values(name=name, created=time.time()))
                return Domain(r.inserted_primary_key[0], name)
        except IntegrityError:
            raise AlreadyExists(f"the domain {name} already exists") from None

    def delete_domain(self, name: str) -> None:
        with self._write() as c:
            d = c.execute(select(t.domains.c.id).where(t.domains.c.name == name)).first()
            if d is None:
                raise NotFound(f"the domain {name} does not exist")
            n = c.execute(select(func.count()).select_from(t.users)
                          .where(t.users.c.domain_id == d.id)).scalar_one()
            if n:
                raise StoreError(f"the domain {name} still has {n} user(s); delete them first")
            c.execute(delete(t.aliases).where(
                t.aliases.c.address.endswith(f"@{name}", autoescape=True)))
            c.execute(delete(t.domains).where(t.domains.c.id == d.id))

    def get_domain(self, name: str) -> Domain | None:
        with self._read() as c:
            r = c.execute(select(t.domains.c.id, t.domains.c.name)
                          .where(t.domains.c.name == name)).first()
        return Domain(r.id, r.name) if r else None

    def list_domains(self) -> list[Domain]:
        with self._read() as c:
            rows = c.execute(select(t.domains.c.id, t.domains.c.name)
                             .order_by(t.domains.c.name)).all()
        return [Domain(r.id, r.name) for r in rows]

    # -------------------------------------------------------------- users
    _user_cols = (t.users.c.id, t.users.c.address, t.domains.c.name.label("domain"),
                  t.users.c.name, t.users.c.password_hash, t.users.c.quota,
                  t.users.c.used_bytes, t.users.c.used_messages, t.users.c.enabled,
                  t.users.c.admin)

    def _user_select(self):
        return select(*self._user_cols).join(t.domains, t.domains.c.id == t.users.c.domain_id)

    @staticmethod
    def _user(r) -> User:
        return User(r.id, r.address, r.domain, r.name, r.password_hash, int(r.quota),
                    int(r.used_bytes), int(r.used_messages), bool(r.enabled), bool(r.admin))

    def add_user(self, address: str, *, password_hash: str, quota: int, name: str = "",
                 admin: bool = False) -> User:
        domain = address.rpartition("@")[2]
        now = time.time()
        try:
            with self._write() as c:
                d = c.execute(select(t.domains.c.id).where(t.domains.c.name == domain)).first()
                if d is None:
                    raise NotFound(f"the domain {domain} is not a local domain; add it first")
                uid = c.execute(insert(t.users).values(
                    address=address, domain_id=d.id, name=name, password_hash=password_hash,
                    quota=quota, used_bytes=0, used_messages=0, enabled=True, admin=admin,
                    created=now)).inserted_primary_key[0]
                uidvalidity = self._new_uidvalidity(c, len(SPECIAL_FOLDERS))
                c.execute(insert(t.folders), [
                    dict(user_id=uid, name=fname, uidvalidity=uidvalidity + i, uidnext=1,
                         highestmodseq=1, special_use=special)
                    for i, (fname, special) in enumerate(SPECIAL_FOLDERS)])
                c.execute(insert(t.subscriptions), [dict(user_id=uid, name=fname)
                                                    for fname, _ in SPECIAL_FOLDERS])
        except IntegrityError:
            raise AlreadyExists(f"the user {address} already exists") from None
        user = self.get_user(address)
        assert user is not None
        return user

    def get_user(self, address: str) -> User | None:
        with self._read() as c:
            r = c.execute(self._user_select().where(t.users.c.address == address)).first()
        return self._user(r) if r else None

    def get_user_by_id(self, user_id: int) -> User | None:
        with self._read() as c:
            r = c.execute(self._user_select().where(t.users.c.id == user_id)).first()
        return self._user(r) if r else None

    def list_users(self, domain: str | None = None) -> list[User]:
        q = self._user_select().order_by(t.users.c.address)
        if domain:
            q = q.where(t.domains.c.name == domain)
        with self._read() as c:
            return [self._user(r) for r in c.execute(q)]

    def update_user(self, address: str, **fields: object) -> User:
        allowed = {"password_hash", "name", "quota", "enabled", "admin"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        with self._write() as c:
            r = c.execute(update(t.users).where(t.users.c.address == address).values(**fields))
            if r.rowcount == 0:
                raise NotFound(f"the user {address} does not exist")
        user = self.get_user(address)
        assert user is not None
        return user

    def delete_user(self, address: str) -> None:
        with self._write() as c:
            u = c.execute(select(t.users.c.id).where(t.users.c.address == address)).first()
            if u is None:
                raise NotFound(f"the user {address} does not exist")
            self._lock_users(c, [u.id])
            self._record_removed(c, c.execute(
                select(t.messages.c.blob_id, t.folders.c.id, t.folders.c.highestmodseq + 1)
                .join(t.folders, t.folders.c.id == t.messages.c.folder_id)
                .where(t.messages.c.user_id == u.id)).all())
            c.execute(delete(t.messages).where(t.messages.c.user_id == u.id))
            c.execute(delete(t.folders).where(t.folders.c.user_id == u.id))
            c.execute(delete(t.forwards).where(t.forwards.c.user_id == u.id))
            c.execute(delete(t.settings).where(t.settings.c.scope == address))
            self._bayes_drop(c, u.id)
            c.execute(delete(t.users).where(t.users.c.id == u.id))

    # ------------------------------------------------- aliases, forwards
    def add_alias(self, address: str, target: str) -> Alias:
        domain = address.rpartition("@")[2]
        try:
            with self._write() as c:
                if c.execute(select(t.domains.c.id).where(t.domains.c.name == domain)).first() is None:
                    raise NotFound(f"the domain {domain} is not a local domain; add it first")
                c.execute(insert(t.aliases).values(address=address, target=target))
        except IntegrityError:
            raise AlreadyExists(f"the alias {address} -> {target} already exists") from None
        return Alias(address, target)

    def delete_alias(self, address: str, target: str | None = None) -> int:
        q = delete(t.aliases).where(t.aliases.c.address == address)
        if target:
            q = q.where(t.aliases.c.target == target)
        with self._write() as c:
            return c.execute(q).rowcount

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        q = select(t.aliases.c.address, t.aliases.c.target).order_by(
            t.aliases.c.address, t.aliases.c.target)
        if domain:
            # autoescape: "_" and "%" in a name are literal, not wildcards.
            q = q.where(t.aliases.c.address.endswith(f"@{domain}", autoescape=True))
        with self._read() as c:
            return [Alias(r.address, r.target) for r in c.execute(q)]

    def alias_targets(self, address: str) -> list[str]:
        with self._read() as c:
            return list(c.execute(select(t.aliases.c.target)
                                  .where(t.aliases.c.address == address)
                                  .order_by(t.aliases.c.target)).scalars())

    def set_forward(self, user_id: int, target: str, keep: bool) -> None:
        try:
            with self._write() as c:
                c.execute(delete(t.forwards).where(t.forwards.c.user_id == user_id))
                c.execute(insert(t.forwards).values(user_id=user_id, target=target, keep=keep))
        except IntegrityError:
            raise NotFound("the user does not exist") from None

    def clear_forward(self, user_id: int) -> bool:
        with self._write() as c:
            return c.execute(delete(t.forwards).where(t.forwards.c.user_id == user_id)).rowcount > 0

    def get_forward(self, user_id: int) -> Forward | None:
        with self._read() as c:
            r = c.execute(select(t.forwards).where(t.forwards.c.user_id == user_id)).first()
        return Forward(r.user_id, r.target, bool(r.keep)) if r else None

    # ------------------------------------------------------------ folders
    @staticmethod
    def _folder(r, counts=None) -> Folder:
        extra = counts.get(r.id, (0, 0, 0)) if counts is not None else (0, 0, 0)
        return Folder(r.id, r.user_id, r.name, int(r.uidvalidity), int(r.uidnext),
                      int(r.highestmodseq), r.special_use, int(r.recent_uid), *extra)

    def list_folders(self, user_id: int, *, counts: bool = False) -> list[Folder]:
        with self._read() as c:
            rows = c.execute(select(t.folders).where(t.folders.c.user_id == user_id)
                             .order_by(t.folders.c.id)).all()
            cmap = None
            if counts:
                m = t.messages
                unseen = func.sum(case((m.c.flags.contains("\\Seen", autoescape=True), 0),
                                       else_=1))
                cmap = {r.folder_id: (int(r.n), int(r.unseen or 0), int(r.size or 0)) for r in c.execute(
                    select(m.c.folder_id, func.count().label("n"), unseen.label("unseen"),
                           func.sum(m.c.size).label("size"))
                    .where(m.c.user_id == user_id).group_by(m.c.folder_id))}
        return [self._folder(r, cmap) for r in rows]

    def get_folder(self, user_id: int, name: str) -> Folder | None:
        if name.upper() == "INBOX":
            name = "INBOX"
        with self._read() as c:
            r = c.execute(select(t.folders).where(t.folders.c.user_id == user_id,
                                                  t.folders.c.name == name)).first()
        return self._folder(r) if r else None

    def get_folder_by_id(self, folder_id: int) -> Folder | None:
        with self._read() as c:
            r = c.execute(select(t.folders).where(t.folders.c.id == folder_id)).first()
        return self._folder(r) if r else None

    def folder_counts(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
        """Read from ix_messages_counts alone (no message rows)."""
        m = t.messages
        unseen = func.sum(case((m.c.flags.contains("\\Seen", autoescape=True), 0), else_=1))
        out = {int(f): (0, 0, 0) for f in folder_ids}
        with self._read() as c:
            for r in c.execute(select(m.c.folder_id, func.count(), unseen, func.sum(m.c.size))
                               .where(m.c.folder_id.in_(list(out))).group_by(m.c.folder_id)):
                out[int(r[0])] = (int(r[1]), int(r[2] or 0), int(r[3] or 0))
        return out

    def folder_versions(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """folder id -> (highestmodseq, uidnext) for many folders in one query:
        how IMAP sessions in IDLE notice changes made by other processes."""
        f = t.folders
        out: dict[int, tuple[int, int]] = {}
        ids = list(folder_ids)
        with self._read() as c:
            for i in range(0, len(ids), 500):
                for r in c.execute(select(f.c.id, f.c.highestmodseq, f.c.uidnext)
                                   .where(f.c.id.in_(ids[i:i + 500]))):
                    out[r.id] = (int(r.highestmodseq), int(r.uidnext))
        return out

    def create_folder(self, user_id: int, name: str, special_use: str | None = None) -> Folder:
        try:
            with self._write() as c:
                if c.execute(select(t.users.c.id).where(t.users.c.id == user_id)).first() is None:
                    raise NotFound("the user does not exist")
                fid = c.execute(insert(t.folders).values(
                    user_id=user_id, name=name, uidvalidity=self._new_uidvalidity(c), uidnext=1,
                    highestmodseq=1, special_use=special_use
                )).inserted_primary_key[0]
        except IntegrityError:
            raise AlreadyExists(f"the folder {name} already exists") from None
        f = self.get_folder_by_id(fid)
        assert f is not None
        return f

    _UIDVALIDITY_KEY = "store.last_uidvalidity"

    def _new_uidvalidity(self, c: Connection, n: int = 1) -> int:
        """The first of n fresh UIDVALIDITY values: the clock in seconds, but
        always above every value handed out before, so that a folder (or user)
        deleted and made again never shows clients an old UIDVALIDITY with
        UIDs restarting at 1 (RFC 3501 2.3.1.1; POP3 UIDLs depend on it too)."""
        s = t.settings
        where = (s.c.scope == "", s.c.key == self._UIDVALIDITY_KEY)
        last = c.execute(select(s.c.value).where(*where).with_for_update()).scalar()
        floor = int(last) if last is not None else (
            c.execute(select(func.max(t.folders.c.uidvalidity))).scalar() or 0)
        first = max(int(time.time()), int(floor) + 1)
        if last is None:
            c.execute(insert(s).values(scope="", key=self._UIDVALIDITY_KEY,
                                       value=str(first + n - 1)))
        else:
            c.execute(update(s).where(*where).values(value=str(first + n - 1)))
        return first

    def rename_folder(self, user_id: int, old: str, new: str) -> None:
        """Renames the folder and its children (hierarchy separator '/').
        Renaming INBOX moves its messages into a new folder, as RFC 3501 says."""
        try:
            with self._write() as c:
                self._lock_users(c, [user_id])
                f = t.folders
                if c.execute(select(f.c.id).where(f.c.user_id == user_id, f.c.name == new)).first():
                    raise AlreadyExists(f"the folder {new} already exists")
                src = c.execute(select(f.c.id).where(f.c.user_id == user_id, f.c.name == old)).first()
                if src is None:
                    raise NotFound(f"the folder {old} does not exist")
                if old == "INBOX":
                    raise StoreError("renaming INBOX is not supported; copy its messages instead")
                # Children are found before the folder is renamed: renamed under
                # itself ("X" -> "X/y") it would match the prefix and move twice.
                children = c.execute(select(f.c.id, f.c.name).where(
                    f.c.user_id == user_id,
                    f.c.name.startswith(old + "/", autoescape=True))).all()
                c.execute(update(f).where(f.c.id == src.id).values(name=new))
                # LIKE is case-insensitive on SQLite (ASCII) and not on PostgreSQL;
                # folder names are case-sensitive, so the prefix is checked again here.
                for child in children:
                    if child.name.startswith(old + "/"):
                        c.execute(update(f).where(f.c.id == child.id)
                                  .values(name=new + child.name[len(old):]))
                self._rename_subscriptions(c, user_id, old, new)
        except IntegrityError:
            # A child's new name is taken (say "A/k" -> "B/k"): nothing was renamed.
            raise AlreadyExists(f"a folder under {new} already exists") from None

    @staticmethod
    def _rename_subscriptions(c: Connection, user_id: int, old: str, new: str) -> None:
        """The subscriptions of a renamed folder and its children follow it."""
        sub = t.subscriptions
        names = [n for n in c.execute(select(sub.c.name).where(
            sub.c.user_id == user_id, sub.c.name.startswith(old, autoescape=True))).scalars()
            if n == old or n.startswith(old + "/")]
        if not names:
            return
        have = set(c.execute(select(sub.c.name).where(sub.c.user_id == user_id)).scalars())
        c.execute(delete(sub).where(sub.c.user_id == user_id, sub.c.name.in_(names)))
        moved = {new + n[len(old):] for n in names} - (have - set(names))
        if moved:
            c.execute(insert(sub), [dict(user_id=user_id, name=n) for n in sorted(moved)])

    def delete_folder(self, user_id: int, name: str) -> None:
        if name.upper() == "INBOX":
            raise StoreError("INBOX cannot be deleted")
        with self._write() as c:
            self._lock_users(c, [user_id])
            f = c.execute(select(t.folders.c.id, t.folders.c.highestmodseq).where(
                t.folders.c.user_id == user_id, t.folders.c.name == name)).first()
            if f is None:
                raise NotFound(f"the folder {name} does not exist")
            rows = c.execute(select(t.messages.c.blob_id, t.messages.c.size)
                             .where(t.messages.c.folder_id == f.id)).all()
            c.execute(delete(t.messages).where(t.messages.c.folder_id == f.id))
            c.execute(delete(t.folders).where(t.folders.c.id == f.id))
            self._uncharge(c, user_id, sum(r.size for r in rows), len(rows))
            # a session with the folder selected holds its blobs until told (CLOSED)
            self._record_removed(c, ((r.blob_id, f.id, int(f.highestmodseq) + 1) for r in rows))

    def set_subscribed(self, user_id: int, name: str, subscribed: bool) -> None:
        sub = t.subscriptions
        with self._write() as c:
            c.execute(delete(sub).where(sub.c.user_id == user_id, sub.c.name == name))
            if subscribed:
                c.execute(insert(sub).values(user_id=user_id, name=name))

    def list_subscriptions(self, user_id: int) -> list[str]:
        sub = t.subscriptions
        with self._read() as c:
            return list(c.execute(select(sub.c.name).where(sub.c.user_id == user_id)
                                  .order_by(sub.c.name)).scalars())

    def claim_recent(self, folder_id: int, top_uid: int) -> int:
        """Compare-and-set on the mark, so no lock is held: of two sessions
        claiming at once, one gets the UIDs and the other sees the new mark."""
        f = t.folders
        while True:
            with self._read() as c:
                mark = c.execute(select(f.c.recent_uid).where(f.c.id == folder_id)).scalar()
            if mark is None or int(mark) >= top_uid:
                return top_uid if mark is None else int(mark)
            # no fsync of its own: after a power cut a message may be \Recent
            # once more, nothing worse; the next durable commit syncs it anyway
            with self._write(durable=False) as c:
                done = c.execute(update(f).where(f.c.id == folder_id, f.c.recent_uid == mark)
                                 .values(recent_uid=top_uid)).rowcount
            if done:
                return int(mark)

    # ----------------------------------------------------------- settings
    def get_setting(self, scope: str, key: str) -> str | None:
        with self._read() as c:
            return c.execute(select(t.settings.c.value).where(
                t.settings.c.scope == scope, t.settings.c.key == key)).scalar()

    def set_setting(self, scope: str, key: str, value: str | None) -> None:
        with self._write() as c:
            c.execute(delete(t.settings).where(t.settings.c.scope == scope,
                                               t.settings.c.key == key))
            if value is not None:
                c.execute(insert(t.settings).values(scope=scope, key=key, value=value))
