"""Messages of the SQL store (a mixin of SqlStore): group-commit delivery,
listing, flags, expunge, copy/move, and quota accounting.

Quota is checked and charged in the same UPDATE that a delivery commits with,
so concurrent writers can never push a user past the limit. A removal is
recorded (views.py) and its blob deleted later by purge_removed, once no
live session shows it and nothing refers to it any more (`_orphans`).
"""
from __future__ import annotations

import json
import time
from typing import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy import Connection, bindparam, case, delete, insert, or_, select, update

from ..interfaces import (AlreadyExists, Delivered, Delivery, FlagMode, Message, NotFound, Queued, QuotaExceeded,
                          StoreError)
from . import schema as t


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

class _AllRefused(Exception):
    """Rolls back an all-or-none delivery from inside its transaction."""

    def __init__(self, error: StoreError) -> None:
        super().__init__(error.text)
        self.error = error


class MessageStore:
    # Provided by SqlStore.
    _write: object
    _read: object
    _lock_users: object
    _lock_folder_owners: object
    blobs: object
    _insert_queued: object
    _record_removed: object
    _record_vanished: object
    _still_removed: object

    def deliver(self, deliveries: Sequence[Delivery], queued: Sequence[Queued] = (), *,
                all_or_none: bool = False) -> list[Delivered | StoreError]:
        """Commit a batch of deliveries in one transaction (group commit).
        Blobs must already be durable. Per delivery: a Delivered, or the
        StoreError (QuotaExceeded, NotFound) that refused it. The statements
        are per user and per folder, not per message: a batch of twenty
        messages for one mailbox is four statements."""
        results: list[Delivered | StoreError | None] = [None] * len(deliveries)
        if not deliveries and not queued:
            return []
        now = time.time()
        names = ["INBOX" if d.folder.upper() == "INBOX" else d.folder for d in deliveries]
        try:
            return self._deliver(deliveries, queued, names, results, now, all_or_none)
        except _AllRefused as e:   # the transaction was rolled back: nothing kept
            return [e.error] * len(deliveries)
        except IntegrityError:
            if not queued:
                raise
            raise AlreadyExists("the queue already holds "
                                + ", ".join(q.queue_id for q in queued)) from None

    def _deliver(self, deliveries: Sequence[Delivery], queued: Sequence[Queued], names: list[str],
                 results: list, now: float, all_or_none: bool) -> list[Delivered | StoreError]:
        with self._write() as c:
            if queued:
                self._insert_queued(c, queued, now)
            if not deliveries:
                return []
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
            refused = next((r for r in results if r is not None), None)
            if all_or_none and refused is not None:
                raise _AllRefused(refused)   # rolls the charges back too
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

    def page_messages(self, folder_id: int, *, limit: int, offset: int = 0,
                      before_uid: int | None = None) -> list[Message]:
        """Newest first along the (folder_id, uid) unique index: a page of a
        100,000-message folder reads its rows only (plus the skipped keys)."""
        m = t.messages
        q = select(*self._msg_cols, m.c.meta).where(m.c.folder_id == folder_id)
        if before_uid is not None:
            q = q.where(m.c.uid < before_uid)
        q = q.order_by(m.c.uid.desc()).limit(max(0, limit)).offset(max(0, offset))
        with self._read() as c:
            return [self._message(r, True) for r in c.execute(q)]

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
        todo: list[tuple[object, frozenset[str]]] = []
        with self._write() as c:
            self._lock_folder_owners(c, [folder_id])
            for i in range(0, len(uids), 500):
                for r in c.execute(select(*self._msg_cols).where(
                        m.c.folder_id == folder_id, m.c.uid.in_(list(uids[i:i + 500])))):
                    if unchanged_since is not None and int(r.modseq) > unchanged_since:
                        continue
                    old = _flags_set(r.flags)
                    new = (flags if mode == "set" else old | flags if mode == "add"
                           else old - flags)
                    if new != old:
                        todo.append((r, new))
            if not todo:
                return []
            # one modseq for the whole command (RFC 7162 allows it: each STORE
            # gets its own), one UPDATE per distinct resulting flag set
            ms = int(c.execute(update(f).where(f.c.id == folder_id)
                               .values(highestmodseq=f.c.highestmodseq + 1)
                               .returning(f.c.highestmodseq)).scalar_one())
            by_text: dict[str, list[int]] = {}
            for r, new in todo:
                by_text.setdefault(_flags_text(new), []).append(r.id)
            for text, ids in by_text.items():
                for i in range(0, len(ids), 500):
                    c.execute(update(m).where(m.c.id.in_(ids[i:i + 500])).values(flags=text, modseq=ms))
        return [Message(r.id, folder_id, int(r.uid), r.blob_id, int(r.size), r.internaldate, new, ms)
                for r, new in sorted(todo, key=lambda x: x[0].uid)]

    def expunge(self, folder_id: int, uids: Sequence[int]) -> list[int]:
        """Remove messages by uid; frees their quota. Returns the uids removed.
        Their blobs stay until purge_removed finds no live view needs them."""
        m, f = t.messages, t.folders
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
                ms = c.execute(update(f).where(f.c.id == folder_id)
                               .values(highestmodseq=f.c.highestmodseq + 1)
                               .returning(f.c.highestmodseq)).scalar_one()
                self._record_removed(c, ((b, folder_id, int(ms)) for b in blob_ids))
                self._record_vanished(c, folder_id, int(ms), removed)
        return sorted(removed)

    def delete_messages(self, user_id: int, message_ids: Sequence[int]) -> int:
        """Delete by global message id (POP3 DELE at QUIT, the web)."""
        m, f = t.messages, t.folders
        with self._write() as c:
            self._lock_users(c, [user_id])
            rows = c.execute(select(m.c.id, m.c.folder_id, m.c.uid, m.c.blob_id, m.c.size).where(
                m.c.user_id == user_id, m.c.id.in_(list(message_ids)))).all()
            if rows:
                c.execute(delete(m).where(m.c.id.in_([r.id for r in rows])))
                self._uncharge(c, user_id, sum(r.size for r in rows), len(rows))
                ms = {fid: top for fid, top in c.execute(
                    update(f).where(f.c.id.in_({r.folder_id for r in rows}))
                    .values(highestmodseq=f.c.highestmodseq + 1)
                    .returning(f.c.id, f.c.highestmodseq))}
                self._record_removed(c, ((r.blob_id, r.folder_id, int(ms[r.folder_id]))
                                         for r in rows))
                for fid, top in ms.items():
                    self._record_vanished(c, fid, int(top), (r.uid for r in rows if r.folder_id == fid))
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
            c.execute(insert(m), [dict(
                user_id=dest.user_id, folder_id=dest_folder_id, uid=first + i,
                blob_id=r.blob_id, size=r.size, internaldate=r.internaldate, flags=r.flags,
                modseq=int(top.highestmodseq), meta=r.meta) for i, r in enumerate(rows)])
            pairs = [(int(r.uid), first + i) for i, r in enumerate(rows)]
            if move:
                c.execute(delete(m).where(m.c.id.in_([r.id for r in rows])))
                ms = c.execute(update(f).where(f.c.id == folder_id)
                               .values(highestmodseq=f.c.highestmodseq + 1)
                               .returning(f.c.highestmodseq)).scalar_one()
                # the copy keeps the blob; the record keeps it should the copy go first
                self._record_removed(c, ((r.blob_id, folder_id, int(ms)) for r in rows))
                self._record_vanished(c, folder_id, int(ms), (r.uid for r in rows))
        return pairs

    def _uncharge(self, c: Connection, user_id: int, size: int, count: int) -> None:
        u = t.users
        # CASE, not max(a, b) (SQLite) or greatest() (PostgreSQL): one statement for both.
        c.execute(update(u).where(u.c.id == user_id).values(
            used_bytes=case((u.c.used_bytes < size, 0), else_=u.c.used_bytes - size),
            used_messages=case((u.c.used_messages < count, 0), else_=u.c.used_messages - count)))

    def _orphans(self, c: Connection, blob_ids: Sequence[str]) -> list[str]:
        """Of these blobs, those no message, queue entry or removal not yet
        purged refers to any more."""
        ids = set(blob_ids)
        out: set[str] = set()
        todo = sorted(ids)
        for i in range(0, len(todo), 500):
            part = todo[i:i + 500]
            used = set(c.execute(select(t.messages.c.blob_id)
                                 .where(t.messages.c.blob_id.in_(part))).scalars())
            used |= set(c.execute(select(t.queue.c.blob_id)
                                  .where(t.queue.c.blob_id.in_(part))).scalars())
            used |= self._still_removed(c, part)
            out.update(set(part) - used)
        return sorted(out)
