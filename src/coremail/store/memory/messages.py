"""Messages of the memory store (a mixin of MemoryStore): delivery with the
quota charged in the same locked step, listing, flags and modseq, expunge,
copy/move. The rules mirror store/sql/messages.py; the lock makes each
method one transaction, so concurrent deliveries never pass a quota.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Sequence

from ..interfaces import (Delivered, Delivery, FlagMode, Folder, Message, NotFound, Queued,
                          QuotaExceeded,
                          StoreError)


@dataclass
class _Folder:
    id: int
    user_id: int
    name: str
    uidvalidity: int
    uidnext: int = 1          # only goes up: a uid is never given twice in a folder
    highestmodseq: int = 1
    special_use: str | None = None
    recent_uid: int = 0

    def record(self, messages: int = 0, unseen: int = 0, size: int = 0) -> Folder:
        return Folder(self.id, self.user_id, self.name, self.uidvalidity, self.uidnext,
                      self.highestmodseq, self.special_use, self.recent_uid,
                      messages, unseen, size)


@dataclass
class _Msg:
    id: int
    user_id: int
    folder_id: int
    uid: int
    blob_id: str
    size: int
    internaldate: float
    flags: frozenset[str]
    modseq: int
    meta: str | None       # JSON, as in SQL: each reader gets its own copy

    def record(self, with_meta: bool = True) -> Message:
        meta = json.loads(self.meta) if with_meta and self.meta else None
        return Message(self.id, self.folder_id, self.uid, self.blob_id, self.size,
                       self.internaldate, self.flags, self.modseq, meta)


class MemoryMessages:
    # Provided by MemoryStore.
    _lock: object
    _users: dict
    _folders: dict[int, _Folder]
    _messages: dict[int, _Msg]
    _next_id: object
    _charge: object
    _uncharge: object
    _drop_orphans: object
    _find_folder: object
    _record_removed: object
    _record_vanished: object

    def _in_folder(self, folder_id: int, uids: Sequence[int] | None = None) -> list[_Msg]:
        """The folder's messages (those among uids, if given) in uid order."""
        want = None if uids is None else set(uids)
        return sorted((m for m in self._messages.values()
                       if m.folder_id == folder_id and (want is None or m.uid in want)),
                      key=lambda m: m.uid)

    def deliver(self, deliveries: Sequence[Delivery], queued: Sequence[Queued] = (), *,
                all_or_none: bool = False) -> list[Delivered | StoreError]:
        """Commit a batch of deliveries at once (group commit). Per delivery: a
        Delivered, or the StoreError (QuotaExceeded, NotFound) that refused it.
        Each user is charged once for the batch if it all fits, else message by
        message in order; each folder spends one modseq for the batch."""
        results: list[Delivered | StoreError | None] = [None] * len(deliveries)
        now = time.time()
        names = ["INBOX" if d.folder.upper() == "INBOX" else d.folder for d in deliveries]
        with self._lock:
            if queued:
                self._add_queued(queued, now)
            folders: dict[int, _Folder] = {}
            by_user: dict[int, list[int]] = {}
            for i, d in enumerate(deliveries):
                f = self._find_folder(d.user_id, names[i])
                if f is None:
                    results[i] = NotFound(f"the folder {names[i]} does not exist")
                else:
                    folders[i] = f
                    by_user.setdefault(d.user_id, []).append(i)
            accepted: list[int] = []
            charged: list[tuple[int, int, int]] = []
            for user_id, idxs in by_user.items():
                ds = [deliveries[i] for i in idxs]
                size = sum(d.blob.size for d in ds)
                if self._charge(user_id, size, len(ds), any(d.check_quota for d in ds)):
                    accepted.extend(idxs)
                    charged.append((user_id, size, len(ds)))
                    continue
                for i, d in zip(idxs, ds):  # not all fit: take them one by one, in order
                    if self._charge(user_id, d.blob.size, 1, d.check_quota):
                        accepted.append(i)
                        charged.append((user_id, d.blob.size, 1))
                    else:
                        results[i] = QuotaExceeded("the recipient's mailbox is full")
            refused = next((r for r in results if r is not None), None)
            if all_or_none and refused is not None:   # take back the charges: nothing is stored
                for args in charged:
                    self._uncharge(*args)
                return [refused] * len(deliveries)
            by_folder: dict[int, list[int]] = {}
            for i in sorted(accepted):
                by_folder.setdefault(folders[i].id, []).append(i)
            for fid, idxs in by_folder.items():
                f = self._folders[fid]
                f.highestmodseq += 1
                for i in idxs:
                    d = deliveries[i]
                    m = _Msg(self._next_id("message"), d.user_id, fid, f.uidnext,
                             d.blob.id, d.blob.size, d.internaldate or now, frozenset(d.flags),
                             f.highestmodseq,
                             json.dumps(d.meta, separators=(",", ":"))
                             if d.meta is not None else None)
                    f.uidnext += 1
                    self._messages[m.id] = m
                    results[i] = Delivered(m.id, fid, m.uid)
        return results  # type: ignore[return-value]

    def list_messages(self, folder_id: int, *, since_uid: int = 0,
                      with_meta: bool = False) -> list[Message]:
        with self._lock:
            return [m.record(with_meta) for m in self._in_folder(folder_id) if m.uid > since_uid]

    def page_messages(self, folder_id: int, *, limit: int, offset: int = 0,
                      before_uid: int | None = None) -> list[Message]:
        with self._lock:
            msgs = [m for m in reversed(self._in_folder(folder_id))
                    if before_uid is None or m.uid < before_uid]
            start = max(0, offset)
            return [m.record() for m in msgs[start:start + max(0, limit)]]

    def message_index(self, folder_id: int, *, changed_since: int = 0) -> list[tuple]:
        """(uid, flags text, modseq, size, internaldate, blob_id) per message in
        uid order: what IMAP keeps of a selected folder. changed_since: only
        messages above that modseq."""
        with self._lock:
            return [(m.uid, " ".join(sorted(m.flags)), m.modseq, m.size, m.internaldate, m.blob_id)
                    for m in self._in_folder(folder_id)
                    if not changed_since or m.modseq > changed_since]

    def message_uids(self, folder_id: int) -> list[int]:
        with self._lock:
            return [m.uid for m in self._in_folder(folder_id)]

    def get_messages(self, folder_id: int, uids: Sequence[int]) -> list[Message]:
        with self._lock:
            return [m.record() for m in self._in_folder(folder_id, uids)]

    def get_message(self, message_id: int) -> Message | None:
        with self._lock:
            m = self._messages.get(message_id)
            return m.record() if m else None

    def set_flags(self, folder_id: int, uids: Sequence[int], flags: frozenset[str],
                  mode: FlagMode, *, unchanged_since: int | None = None) -> list[Message]:
        """Change flags; returns the messages whose flags changed, all with the
        command's one new modseq. With unchanged_since (CONDSTORE), messages modified
        after it are left alone."""
        changed: list[Message] = []
        with self._lock:
            f = self._folders.get(folder_id)
            todo = []
            for m in self._in_folder(folder_id, uids):
                if unchanged_since is not None and m.modseq > unchanged_since:
                    continue
                new = frozenset(flags if mode == "set" else m.flags | flags if mode == "add"
                                else m.flags - flags)
                if new != m.flags:
                    todo.append((m, new))
            if todo:
                assert f is not None
                f.highestmodseq += 1   # one modseq per command, as in SQL
                for m, new in todo:
                    m.flags, m.modseq = new, f.highestmodseq
                    changed.append(m.record(with_meta=False))
        return changed

    def _remove(self, gone: list[_Msg]) -> None:
        """Delete messages, free their quota, spend a modseq in each folder
        they left, and record the removals (their blobs go at purge_removed)."""
        for m in gone:
            del self._messages[m.id]
            self._uncharge(m.user_id, m.size, 1)
        for fid in {m.folder_id for m in gone}:
            self._folders[fid].highestmodseq += 1
            self._record_vanished(fid, self._folders[fid].highestmodseq,
                                  [m.uid for m in gone if m.folder_id == fid])
        self._record_removed((m.blob_id, m.folder_id, self._folders[m.folder_id].highestmodseq)
                             for m in gone)

    def expunge(self, folder_id: int, uids: Sequence[int]) -> list[int]:
        """Remove messages by uid; frees their quota. Returns the uids removed."""
        with self._lock:
            gone = self._in_folder(folder_id, uids)
            self._remove(gone)
            return [m.uid for m in gone]

    def delete_messages(self, user_id: int, message_ids: Sequence[int]) -> int:
        """Delete by global message id (POP3 DELE at QUIT, the web); another
        user's message ids are ignored."""
        with self._lock:
            gone = [m for i in dict.fromkeys(message_ids)
                    if (m := self._messages.get(i)) is not None and m.user_id == user_id]
            self._remove(gone)
            return len(gone)

    def copy_messages(self, folder_id: int, uids: Sequence[int], dest_folder_id: int, *,
                      move: bool = False) -> list[tuple[int, int]]:
        """Copy (or move) keeping flags and internal date; returns (old uid, new
        uid) pairs. A copy is charged to the quota (all or nothing); a move is not."""
        with self._lock:
            dest = self._folders.get(dest_folder_id)
            if dest is None:
                raise NotFound("the destination folder does not exist")
            src = self._in_folder(folder_id, uids)
            if not src:
                return []
            if not move and not self._charge(
                    dest.user_id, sum(m.size for m in src), len(src), True):
                raise QuotaExceeded("the mailbox is full")
            dest.highestmodseq += 1
            pairs = []
            for m in src:
                c = _Msg(self._next_id("message"), dest.user_id, dest.id, dest.uidnext,
                         m.blob_id, m.size, m.internaldate, m.flags, dest.highestmodseq, m.meta)
                dest.uidnext += 1
                self._messages[c.id] = c
                pairs.append((m.uid, c.uid))
            if move:
                for m in src:
                    del self._messages[m.id]
                f = self._folders[folder_id]
                f.highestmodseq += 1
                self._record_removed((m.blob_id, folder_id, f.highestmodseq) for m in src)
                self._record_vanished(folder_id, f.highestmodseq, [m.uid for m in src])
            return pairs
