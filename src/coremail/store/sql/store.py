"""SqlStore: the Store interface over SQLAlchemy Core (SQLite or PostgreSQL).

Write transactions are short and IMMEDIATE; quota is checked and charged in
the same UPDATE that a delivery commits with, so concurrent writers can never
push a user past the limit. Message rows point at blobs; a blob is removed
only when no message or queue entry refers to it any more.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..blobs import BlobStore
from ..interfaces import (SPECIAL_FOLDERS, Alias, AlreadyExists, BlobRef, Delivered, Delivery,
                          Domain, FlagMode, Folder, Forward, Message, NotFound, QueueEntry,
                          QueueRecipient, QuotaExceeded, StoreError, User)
from . import schema as t
from .engine import make_engine, migrate, sqlite_url
from .leases import QueueLeases


def _flags_text(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def _flags_set(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


# The group-commit statements, built once: SQLAlchemy then reuses their
# compiled form, which matters at hundreds of deliveries a second.
_FOLDERS_OF = select(t.folders.c.id, t.folders.c.user_id, t.folders.c.name).where(
    t.folders.c.user_id.in_(bindparam("users", expanding=True)),
    t.folders.c.name.in_(bindparam("names", expanding=True)))
_CHARGE = update(t.users).where(t.users.c.id == bindparam("uid")).values(
    used_bytes=t.users.c.used_bytes + bindparam("size"),
    used_messages=t.users.c.used_messages + bindparam("count"))
_CHARGE_CHECKED = _CHARGE.where(or_(t.users.c.quota == 0,
                                    t.users.c.used_bytes + bindparam("size") <= t.users.c.quota))
_RESERVE_UIDS = update(t.folders).where(t.folders.c.id == bindparam("fid")).values(
    uidnext=t.folders.c.uidnext + bindparam("n"),
    highestmodseq=t.folders.c.highestmodseq + 1).returning(
    t.folders.c.uidnext, t.folders.c.highestmodseq)
_INSERT_MESSAGES = insert(t.messages).returning(
    t.messages.c.id, t.messages.c.folder_id, t.messages.c.uid, sort_by_parameter_order=True)


class SqlStore(QueueLeases):
    def __init__(self, url: str, blob_root: Path):
        self.engine = make_engine(url)
        self.blobs = BlobStore(blob_root)

    @classmethod
    def open_home(cls, data_dir: Path, url: str = "") -> "SqlStore":
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(url or sqlite_url(data_dir / "coremail.db"), data_dir / "blobs")

    def migrate(self) -> None:
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(immediate=True)
            with conn.begin():
                yield conn

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
                         highestmodseq=1, special_use=special, subscribed=True)
                    for i, (fname, special) in enumerate(SPECIAL_FOLDERS)])
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
            blob_ids = c.execute(select(t.messages.c.blob_id)
                                 .where(t.messages.c.user_id == u.id)).scalars().all()
            c.execute(delete(t.messages).where(t.messages.c.user_id == u.id))
            c.execute(delete(t.folders).where(t.folders.c.user_id == u.id))
            c.execute(delete(t.forwards).where(t.forwards.c.user_id == u.id))
            c.execute(delete(t.settings).where(t.settings.c.scope == address))
            c.execute(delete(t.users).where(t.users.c.id == u.id))
            orphans = self._orphans(c, blob_ids)
        self.blobs.delete(orphans)

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
        with self._write() as c:
            c.execute(delete(t.forwards).where(t.forwards.c.user_id == user_id))
            c.execute(insert(t.forwards).values(user_id=user_id, target=target, keep=keep))

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
                      int(r.highestmodseq), r.special_use, bool(r.subscribed), *extra)

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
                fid = c.execute(insert(t.folders).values(
                    user_id=user_id, name=name, uidvalidity=self._new_uidvalidity(c), uidnext=1,
                    highestmodseq=1, special_use=special_use, subscribed=True
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
            c.execute(update(f).where(f.c.id == src.id).values(name=new))
            # LIKE is case-insensitive on SQLite (ASCII) and not on PostgreSQL;
            # folder names are case-sensitive, so the prefix is checked again here.
            for child in c.execute(select(f.c.id, f.c.name).where(
                    f.c.user_id == user_id,
                    f.c.name.startswith(old + "/", autoescape=True))).all():
                if child.name.startswith(old + "/"):
                    c.execute(update(f).where(f.c.id == child.id)
                              .values(name=new + child.name[len(old):]))

    def delete_folder(self, user_id: int, name: str) -> None:
        if name.upper() == "INBOX":
            raise StoreError("INBOX cannot be deleted")
        with self._write() as c:
            self._lock_users(c, [user_id])
            f = c.execute(select(t.folders.c.id).where(t.folders.c.user_id == user_id,
                                                       t.folders.c.name == name)).first()
            if f is None:
                raise NotFound(f"the folder {name} does not exist")
            rows = c.execute(select(t.messages.c.blob_id, t.messages.c.size)
                             .where(t.messages.c.folder_id == f.id)).all()
            c.execute(delete(t.messages).where(t.messages.c.folder_id == f.id))
            c.execute(delete(t.folders).where(t.folders.c.id == f.id))
            self._uncharge(c, user_id, sum(r.size for r in rows), len(rows))
            orphans = self._orphans(c, [r.blob_id for r in rows])
        self.blobs.delete(orphans)

    def set_subscribed(self, user_id: int, name: str, subscribed: bool) -> None:
        with self._write() as c:
            r = c.execute(update(t.folders).where(t.folders.c.user_id == user_id,
                                                  t.folders.c.name == name)
                          .values(subscribed=subscribed))
            if r.rowcount == 0:
                raise NotFound(f"the folder {name} does not exist")

    # ----------------------------------------------------------- messages
    def deliver(self, deliveries: Sequence[Delivery]) -> list[Delivered | StoreError]:
        """Commit a batch of deliveries in one transaction (group commit).
        Blobs must already be durable. Per delivery: a Delivered, or the
        StoreError (QuotaExceeded, NotFound) that refused it. The statements
        are per user and per folder, not per message: a batch of twenty
        messages for one mailbox is four statements."""
        results: list[Delivered | StoreError | None] = [None] * len(deliveries)
        if not deliveries:
            return []
        now = time.time()
        names = ["INBOX" if d.folder.upper() == "INBOX" else d.folder for d in deliveries]
        with self._write() as c:
            fmap = {(r.user_id, r.name): r.id for r in c.execute(_FOLDERS_OF, dict(
                users=list({d.user_id for d in deliveries}), names=list(set(names))))}
            by_user: dict[int, list[int]] = {}
            for i, d in enumerate(deliveries):
                if (d.user_id, names[i]) in fmap:
                    by_user.setdefault(d.user_id, []).append(i)
                else:
                    results[i] = NotFound(f"the folder {names[i]} does not exist")
            self._lock_users(c, by_user)
            accepted: list[int] = []
            for user_id, idxs in by_user.items():
                ds = [deliveries[i] for i in idxs]
                if self._charge(c, user_id, sum(d.blob.size for d in ds), len(ds),
                                any(d.check_quota for d in ds)):
                    accepted.extend(idxs)
                    continue
                for i, d in zip(idxs, ds):  # not all fit: take them one by one, in order
                    if self._charge(c, user_id, d.blob.size, 1, d.check_quota):
                        accepted.append(i)
                    else:
                        results[i] = QuotaExceeded("the recipient's mailbox is full")
            by_folder: dict[int, list[int]] = {}
            for i in sorted(accepted):
                by_folder.setdefault(fmap[(deliveries[i].user_id, names[i])], []).append(i)
            rows, order = [], []
            for fid, idxs in by_folder.items():
                top = c.execute(_RESERVE_UIDS, dict(fid=fid, n=len(idxs))).one()
                first = int(top.uidnext) - len(idxs)
                for k, i in enumerate(idxs):
                    d = deliveries[i]
                    rows.append(dict(
                        user_id=d.user_id, folder_id=fid, uid=first + k, blob_id=d.blob.id,
                        size=d.blob.size, internaldate=d.internaldate or now,
                        flags=_flags_text(d.flags), modseq=int(top.highestmodseq),
                        meta=json.dumps(d.meta, separators=(",", ":"))
                        if d.meta is not None else None))
                    order.append(i)
            if rows:
                for i, r in zip(order, c.execute(_INSERT_MESSAGES, rows).all()):
                    results[i] = Delivered(r.id, r.folder_id, int(r.uid))
        return results  # type: ignore[return-value]

    @staticmethod
    def _charge(c: Connection, user_id: int, size: int, count: int, check: bool) -> bool:
        """Add to the user's usage; with check, only if it stays within the quota."""
        return c.execute(_CHARGE_CHECKED if check else _CHARGE,
                         dict(uid=user_id, size=size, count=count)).rowcount > 0

    _msg_cols = (t.messages.c.id, t.messages.c.folder_id, t.messages.c.uid,
                 t.messages.c.blob_id, t.messages.c.size, t.messages.c.internaldate,
                 t.messages.c.flags, t.messages.c.modseq)

    @staticmethod
    def _message(r, with_meta: bool = False) -> Message:
        meta = json.loads(r.meta) if with_meta and r.meta else None
        return Message(r.id, r.folder_id, int(r.uid), r.blob_id, int(r.size), r.internaldate,
                       _flags_set(r.flags), int(r.modseq), meta)

    def list_messages(self, folder_id: int, *, since_uid: int = 0,
                      with_meta: bool = False) -> list[Message]:
        cols = self._msg_cols + ((t.messages.c.meta,) if with_meta else ())
        q = (select(*cols).where(t.messages.c.folder_id == folder_id, t.messages.c.uid > since_uid)
             .order_by(t.messages.c.uid))
        with self._read() as c:
            return [self._message(r, with_meta) for r in c.execute(q)]

    def message_index(self, folder_id: int, *, changed_since: int = 0) -> list[tuple]:
        """(uid, flags text, modseq, size, internaldate, blob_id) per message in
        uid order, no meta: what IMAP keeps of a selected folder (100,000 rows
        load in a fraction of a second). changed_since: only rows above that modseq."""
        m = t.messages
        q = select(m.c.uid, m.c.flags, m.c.modseq, m.c.size, m.c.internaldate, m.c.blob_id).where(
            m.c.folder_id == folder_id)
        if changed_since:
            q = q.where(m.c.modseq > changed_since)
        with self._read() as c:
            return [tuple(r) for r in c.execute(q.order_by(m.c.uid))]

    def message_uids(self, folder_id: int) -> list[int]:
        """The folder's uids in order (IMAP finds expunges by another session with it)."""
        m = t.messages
        with self._read() as c:
            return list(c.execute(select(m.c.uid).where(m.c.folder_id == folder_id)
                                  .order_by(m.c.uid)).scalars())

    def get_messages(self, folder_id: int, uids: Sequence[int]) -> list[Message]:
        out: list[Message] = []
        with self._read() as c:
            for i in range(0, len(uids), 500):
                q = (select(*self._msg_cols, t.messages.c.meta)
                     .where(t.messages.c.folder_id == folder_id,
                            t.messages.c.uid.in_(list(uids[i:i + 500])))
                     .order_by(t.messages.c.uid))
                out.extend(self._message(r, True) for r in c.execute(q))
        return out

    def get_message(self, message_id: int) -> Message | None:
        with self._read() as c:
            r = c.execute(select(*self._msg_cols, t.messages.c.meta)
                          .where(t.messages.c.id == message_id)).first()
        return self._message(r, True) if r else None

    def set_flags(self, folder_id: int, uids: Sequence[int], flags: frozenset[str],
                  mode: FlagMode, *, unchanged_since: int | None = None) -> list[Message]:
        """Change flags; returns the messages whose flags changed (with their new
        modseq). With unchanged_since (CONDSTORE), messages modified after it
        are left alone."""
        m, f = t.messages, t.folders
        changed: list[Message] = []
        with self._write() as c:
            self._lock_folder_owners(c, [folder_id])
            for i in range(0, len(uids), 500):
                rows = c.execute(select(*self._msg_cols).where(
                    m.c.folder_id == folder_id, m.c.uid.in_(list(uids[i:i + 500])))).all()
                for r in rows:
                    if unchanged_since is not None and int(r.modseq) > unchanged_since:
                        continue
                    old = _flags_set(r.flags)
                    new = (flags if mode == "set" else old | flags if mode == "add"
                           else old - flags)
                    if new == old:
                        continue
                    ms = c.execute(update(f).where(f.c.id == folder_id)
                                   .values(highestmodseq=f.c.highestmodseq + 1)
                                   .returning(f.c.highestmodseq)).scalar_one()
                    c.execute(update(m).where(m.c.id == r.id)
                              .values(flags=_flags_text(new), modseq=ms))
                    changed.append(Message(r.id, folder_id, int(r.uid), r.blob_id, int(r.size),
                                           r.internaldate, new, int(ms)))
        return changed

    def expunge(self, folder_id: int, uids: Sequence[int]) -> list[int]:
        """Remove messages by uid; frees their quota. Returns the uids removed."""
        m = t.messages
        removed: list[int] = []
        blob_ids: list[str] = []
        with self._write() as c:
            self._lock_folder_owners(c, [folder_id])
            for i in range(0, len(uids), 500):
                rows = c.execute(select(m.c.uid, m.c.blob_id, m.c.size, m.c.user_id).where(
                    m.c.folder_id == folder_id, m.c.uid.in_(list(uids[i:i + 500])))).all()
                if not rows:
                    continue
                c.execute(delete(m).where(m.c.folder_id == folder_id,
                                          m.c.uid.in_([r.uid for r in rows])))
                self._uncharge(c, rows[0].user_id, sum(r.size for r in rows), len(rows))
                removed.extend(int(r.uid) for r in rows)
                blob_ids.extend(r.blob_id for r in rows)
            if removed:
                c.execute(update(t.folders).where(t.folders.c.id == folder_id)
                          .values(highestmodseq=t.folders.c.highestmodseq + 1))
            orphans = self._orphans(c, blob_ids)
        self.blobs.delete(orphans)
        return sorted(removed)

    def delete_messages(self, user_id: int, message_ids: Sequence[int]) -> int:
        """Delete by global message id (POP3 DELE at QUIT, the web)."""
        m = t.messages
        with self._write() as c:
            self._lock_users(c, [user_id])
            rows = c.execute(select(m.c.id, m.c.folder_id, m.c.blob_id, m.c.size).where(
                m.c.user_id == user_id, m.c.id.in_(list(message_ids)))).all()
            if rows:
                c.execute(delete(m).where(m.c.id.in_([r.id for r in rows])))
                self._uncharge(c, user_id, sum(r.size for r in rows), len(rows))
                c.execute(update(t.folders).where(t.folders.c.id.in_({r.folder_id for r in rows}))
                          .values(highestmodseq=t.folders.c.highestmodseq + 1))
            orphans = self._orphans(c, [r.blob_id for r in rows])
        self.blobs.delete(orphans)
        return len(rows)

    def copy_messages(self, folder_id: int, uids: Sequence[int], dest_folder_id: int, *,
                      move: bool = False) -> list[tuple[int, int]]:
        """Copy (or move) keeping flags and internal date; returns (old uid, new uid)
        pairs. A copy is charged to the quota; a move is not."""
        m, f = t.messages, t.folders
        pairs: list[tuple[int, int]] = []
        with self._write() as c:
            self._lock_folder_owners(c, [folder_id, dest_folder_id])
            dest = c.execute(select(f.c.user_id).where(f.c.id == dest_folder_id)).first()
            if dest is None:
                raise NotFound("the destination folder does not exist")
            rows = []
            for i in range(0, len(uids), 500):
                rows.extend(c.execute(select(*self._msg_cols, m.c.meta, m.c.user_id).where(
                    m.c.folder_id == folder_id, m.c.uid.in_(list(uids[i:i + 500])))).all())
            rows.sort(key=lambda r: r.uid)
            if not rows:
                return []
            if not move:
                total = sum(r.size for r in rows)
                u = t.users
                ok = c.execute(update(u).where(
                    u.c.id == dest.user_id,
                    or_(u.c.quota == 0, u.c.used_bytes + total <= u.c.quota)).values(
                    used_bytes=u.c.used_bytes + total,
                    used_messages=u.c.used_messages + len(rows))).rowcount
                if not ok:
                    raise QuotaExceeded("the mailbox is full")
            top = c.execute(update(f).where(f.c.id == dest_folder_id).values(
                uidnext=f.c.uidnext + len(rows), highestmodseq=f.c.highestmodseq + 1)
                .returning(f.c.uidnext, f.c.highestmodseq)).one()
            first = int(top.uidnext) - len(rows)
            for i, r in enumerate(rows):
                c.execute(insert(m).values(
                    user_id=dest.user_id, folder_id=dest_folder_id, uid=first + i,
                    blob_id=r.blob_id, size=r.size, internaldate=r.internaldate, flags=r.flags,
                    modseq=int(top.highestmodseq), meta=r.meta))
                pairs.append((int(r.uid), first + i))
            if move:
                c.execute(delete(m).where(m.c.id.in_([r.id for r in rows])))
                c.execute(update(f).where(f.c.id == folder_id)
                          .values(highestmodseq=f.c.highestmodseq + 1))
        return pairs

    def _uncharge(self, c: Connection, user_id: int, size: int, count: int) -> None:
        u = t.users
        # CASE, not max(a, b) (SQLite) or greatest() (PostgreSQL): one statement for both.
        c.execute(update(u).where(u.c.id == user_id).values(
            used_bytes=case((u.c.used_bytes < size, 0), else_=u.c.used_bytes - size),
            used_messages=u.c.used_messages - count))

    def _orphans(self, c: Connection, blob_ids: Sequence[str]) -> list[str]:
        """Of these blobs, those no message or queue entry refers to any more."""
        ids = set(blob_ids)
        if not ids:
            return []
        used = set(c.execute(select(t.messages.c.blob_id)
                             .where(t.messages.c.blob_id.in_(ids))).scalars())
        used |= set(c.execute(select(t.queue.c.blob_id)
                              .where(t.queue.c.blob_id.in_(ids))).scalars())
        return sorted(ids - used)

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

    # -------------------------------------------------------------- queue
    def enqueue(self, *, queue_id: str, blob: BlobRef, sender: str, recipients: Sequence[str],
                kind: str = "out") -> QueueEntry:
        now = time.time()
        with self._write() as c:
            c.execute(insert(t.queue).values(id=queue_id, blob_id=blob.id, sender=sender, kind=kind,
                                             size=blob.size, created=now, next_attempt=now,
                                             attempts=0, last_error=""))
            c.execute(insert(t.queue_recipients), [
                dict(queue_id=queue_id, address=r, status="pending", last_error="", attempts=0)
                for r in dict.fromkeys(recipients)])
        entry = self.queue_get(queue_id)
        assert entry is not None
        return entry

    def _queue_entries(self, c: Connection, q) -> list[QueueEntry]:
        rows = c.execute(q).all()
        if not rows:
            return []
        rmap: dict[str, list[QueueRecipient]] = {}
        qr = t.queue_recipients
        for r in c.execute(select(qr).where(qr.c.queue_id.in_([r.id for r in rows]))
                           .order_by(qr.c.address)):
            rmap.setdefault(r.queue_id, []).append(
                QueueRecipient(r.address, r.status, r.last_error, r.attempts))
        return [QueueEntry(r.id, r.blob_id, r.sender, r.created, r.next_attempt, r.attempts,
                           r.last_error, tuple(rmap.get(r.id, ())), int(r.size), r.kind)
                for r in rows]

    def queue_list(self) -> list[QueueEntry]:
        with self._read() as c:
            return self._queue_entries(c, select(t.queue).order_by(t.queue.c.created))

    def queue_get(self, queue_id: str) -> QueueEntry | None:
        with self._read() as c:
            got = self._queue_entries(c, select(t.queue).where(t.queue.c.id == queue_id))
        return got[0] if got else None

    def queue_due(self, now: float, limit: int) -> list[QueueEntry]:
        with self._read() as c:
            return self._queue_entries(c, select(t.queue).where(t.queue.c.next_attempt <= now)
                                       .order_by(t.queue.c.next_attempt).limit(limit))

    def queue_update(self, queue_id: str, *, recipients: Sequence[QueueRecipient],
                     next_attempt: float, last_error: str) -> None:
        qr = t.queue_recipients
        with self._write() as c:
            c.execute(update(t.queue).where(t.queue.c.id == queue_id).values(
                next_attempt=next_attempt, last_error=last_error,
                attempts=t.queue.c.attempts + 1, lease_owner=None, lease_until=None))
            for r in recipients:
                c.execute(update(qr).where(and_(qr.c.queue_id == queue_id,
                                                qr.c.address == r.address))
                          .values(status=r.status, last_error=r.last_error, attempts=r.attempts))

    def queue_delete(self, queue_id: str) -> bool:
        with self._write() as c:
            row = c.execute(select(t.queue.c.blob_id).where(t.queue.c.id == queue_id)).first()
            if row is None:
                return False
            c.execute(delete(t.queue_recipients).where(t.queue_recipients.c.queue_id == queue_id))
            c.execute(delete(t.queue).where(t.queue.c.id == queue_id))
            orphans = self._orphans(c, [row.blob_id])
        self.blobs.delete(orphans)
        return True

    def queue_delete_many(self, queue_ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(queue_ids))
        if not ids:
            return 0
        with self._write() as c:
            blobs = list(c.execute(select(t.queue.c.blob_id)
                                   .where(t.queue.c.id.in_(ids))).scalars())
            c.execute(delete(t.queue_recipients).where(t.queue_recipients.c.queue_id.in_(ids)))
            c.execute(delete(t.queue).where(t.queue.c.id.in_(ids)))
            orphans = self._orphans(c, blobs)
        self.blobs.delete(orphans)
        return len(blobs)

    def queue_flush(self, now: float) -> int:
        with self._write() as c:
            return c.execute(update(t.queue).where(t.queue.c.next_attempt > now)
                             .values(next_attempt=now)).rowcount
