"""MemoryStore: the Store interface in dicts and lists under one lock.

It exists so unit tests (and `storage.database = "memory:"` experiments)
get the SQL store's behaviour in microseconds with no database: the same
errors and words, quota charged with delivery, UIDs and ids never reused,
UIDVALIDITY never repeated, blobs removed with their last reference. It is
not durable: everything but the blob files is gone at close(). The whole
behavioural suite in tests/store runs against it and the SQL backends.

Every public method takes `self._lock` for its whole body, which makes each
one a transaction: simple, and obviously free of races. This module holds
lifecycle, domains, users, aliases, forwards, folders and settings; messages
are in messages.py and the outbound queue in queue.py.
"""
from __future__ import annotations

import dataclasses
import itertools
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from ..blobs import BlobStore
from ..interfaces import (SPECIAL_FOLDERS, Alias, AlreadyExists, Domain, FilterRule, Folder, Forward,
                          NotFound, StoreError, User)
from .admin import MemoryAdmin
from .bayes import MemoryBayes
from .messages import MemoryMessages, _Folder, _Msg
from .nodes import MemoryNodes
from .queue import MemoryQueue, _Entry
from .filters import MemoryFilters
from .trace import MemoryTrace
from .views import MemoryViews


class MemoryStore(MemoryMessages, MemoryQueue, MemoryViews, MemoryFilters, MemoryBayes, MemoryTrace,
                  MemoryAdmin, MemoryNodes):
    """Blobs are real files (callers open `blobs.path(id)`): under blob_root,
    or a temp directory of our own that close() removes."""

    _UIDVALIDITY_KEY = "store.last_uidvalidity"   # kept where SqlStore keeps it

    def __init__(self, blob_root: Path | None = None):
        self._own_root = blob_root is None
        root = Path(tempfile.mkdtemp(prefix="coremail-memstore-")) if blob_root is None \
            else Path(blob_root)
        self.blobs = BlobStore(root)
        self._lock = threading.RLock()
        # Counters only go up: ids are never handed out twice (web links,
        # traces and POP3 UIDLs key on them), as with SQL AUTOINCREMENT.
        self._ids = {k: itertools.count(1) for k in ("domain", "user", "folder", "message",
                                                      "rule", "audit")}
        self._domains: dict[str, Domain] = {}
        self._users: dict[int, User] = {}
        self._aliases: set[tuple[str, str]] = set()
        self._forwards: dict[int, Forward] = {}
        self._folders: dict[int, _Folder] = {}
        self._subscriptions: dict[int, set[str]] = {}
        self._messages: dict[int, _Msg] = {}
        self._settings: dict[tuple[str, str], str] = {}
        self._queue: dict[str, _Entry] = {}
        self._removed: list[tuple[str, int, int, float]] = []
        self._vanished: list[tuple[int, int, int, int, float]] = []   # folder, modseq, lo, hi, at
        self._views: dict[str, tuple[dict[int, int], float]] = {}
        self._rules: dict[int, FilterRule] = {}
        self._fingerprints: dict[tuple[str, int], int] = {}
        self._bayes_tokens: dict[int, dict[int, list[int]]] = {}
        self._bayes_totals: dict[int, list[int]] = {}
        self._bayes_learnt: dict[int, dict[str, tuple[bool, float]]] = {}
        self._bayes_seen: dict[int, dict[int, int]] = {}
        self._trace_events: list = []     # the message trace (memory/trace.py)
        self._trace_index: dict[str, list[tuple[float, str]]] = {}
        self._audit: list = []
        self._nodes_data: dict = dict(leases={}, failures=[], nodes={}, files={}, web={})  # nodes.py

    def migrate(self) -> None:
        """Nothing to migrate: there is no schema."""

    def close(self) -> None:
        if self._own_root:
            shutil.rmtree(self.blobs.root, ignore_errors=True)

    def _next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    # ------------------------------------------------------------ domains
    def add_domain(self, name: str) -> Domain:
        with self._lock:
            if name in self._domains:
                raise AlreadyExists(f"the domain {name} already exists")
            d = self._domains[name] = Domain(self._next_id("domain"), name)
            return d

    def delete_domain(self, name: str) -> None:
        with self._lock:
            if name not in self._domains:
                raise NotFound(f"the domain {name} does not exist")
            n = sum(1 for u in self._users.values() if u.domain == name)
            if n:
                raise StoreError(f"the domain {name} still has {n} user(s); delete them first")
            self._aliases = {a for a in self._aliases if not a[0].endswith(f"@{name}")}
            del self._domains[name]

    def get_domain(self, name: str) -> Domain | None:
        with self._lock:
            return self._domains.get(name)

    def list_domains(self) -> list[Domain]:
        with self._lock:
            return sorted(self._domains.values(), key=lambda d: d.name)

    # -------------------------------------------------------------- users
    def _user_by_address(self, address: str) -> User | None:
        return next((u for u in self._users.values() if u.address == address), None)

    def add_user(self, address: str, *, password_hash: str, quota: int, name: str = "",
                 admin: bool = False) -> User:
        domain = address.rpartition("@")[2]
        with self._lock:
            if domain not in self._domains:
                raise NotFound(f"the domain {domain} is not a local domain; add it first")
            if self._user_by_address(address) is not None:
                raise AlreadyExists(f"the user {address} already exists")
            u = User(self._next_id("user"), address, domain, name, password_hash, quota,
                     0, 0, True, admin)
            self._users[u.id] = u
            first = self._new_uidvalidity(len(SPECIAL_FOLDERS))
            for i, (fname, special) in enumerate(SPECIAL_FOLDERS):
                self._add_folder(u.id, fname, first + i, special)
            self._subscriptions[u.id] = {fname for fname, _ in SPECIAL_FOLDERS}
            return u

    def get_user(self, address: str) -> User | None:
        with self._lock:
            return self._user_by_address(address)

    def get_user_by_id(self, user_id: int) -> User | None:
        with self._lock:
            return self._users.get(user_id)

    def list_users(self, domain: str | None = None) -> list[User]:
        with self._lock:
            return sorted((u for u in self._users.values() if not domain or u.domain == domain),
                          key=lambda u: u.address)

    def update_user(self, address: str, **fields: object) -> User:
        allowed = {"password_hash", "name", "quota", "enabled", "admin"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        with self._lock:
            u = self._user_by_address(address)
            if u is None:
                raise NotFound(f"the user {address} does not exist")
            u = self._users[u.id] = dataclasses.replace(u, **fields)  # type: ignore[arg-type]
            return u

    def delete_user(self, address: str) -> None:
        with self._lock:
            u = self._user_by_address(address)
            if u is None:
                raise NotFound(f"the user {address} does not exist")
            gone = [m for m in self._messages.values() if m.user_id == u.id]
            self._record_removed((m.blob_id, m.folder_id, self._folders[m.folder_id].highestmodseq + 1)
                                 for m in gone)
            for m in gone:
                del self._messages[m.id]
            for fid in [f.id for f in self._folders.values() if f.user_id == u.id]:
                del self._folders[fid]
            self._forget_vanished(set(self._folders))
            self._forwards.pop(u.id, None)
            self._subscriptions.pop(u.id, None)
            for key in [k for k in self._settings if k[0] == address]:
                del self._settings[key]
            self._bayes_drop(u.id)
            del self._users[u.id]

    def _charge(self, user_id: int, size: int, count: int, check: bool) -> bool:
        """Add to the user's usage; with check, only if it stays within the quota."""
        u = self._users[user_id]
        if check and u.quota and u.used_bytes + size > u.quota:
            return False
        self._users[user_id] = dataclasses.replace(
            u, used_bytes=u.used_bytes + size, used_messages=u.used_messages + count)
        return True

    def _uncharge(self, user_id: int, size: int, count: int) -> None:
        u = self._users.get(user_id)
        if u is not None:
            self._users[user_id] = dataclasses.replace(
                u, used_bytes=max(0, u.used_bytes - size),
                used_messages=max(0, u.used_messages - count))

    def _drop_orphans(self, blob_ids) -> int:
        """Delete the blobs no message, queue entry or removal not yet purged
        refers to any more; returns how many."""
        ids = set(blob_ids)
        if not ids:
            return 0
        ids -= {m.blob_id for m in self._messages.values()}
        ids -= {e.blob_id for e in self._queue.values()}
        ids -= {r[0] for r in self._removed}
        self.blobs.delete(sorted(ids))
        return len(ids)

    # ------------------------------------------------- aliases, forwards
    def add_alias(self, address: str, target: str) -> Alias:
        domain = address.rpartition("@")[2]
        with self._lock:
            if domain not in self._domains:
                raise NotFound(f"the domain {domain} is not a local domain; add it first")
            if (address, target) in self._aliases:
                raise AlreadyExists(f"the alias {address} -> {target} already exists")
            self._aliases.add((address, target))
        return Alias(address, target)

    def delete_alias(self, address: str, target: str | None = None) -> int:
        with self._lock:
            gone = {a for a in self._aliases if a[0] == address and (not target or a[1] == target)}
            self._aliases -= gone
            return len(gone)

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        with self._lock:
            return [Alias(a, t) for a, t in sorted(self._aliases)
                    if not domain or a.endswith(f"@{domain}")]

    def alias_targets(self, address: str) -> list[str]:
        with self._lock:
            return sorted(t for a, t in self._aliases if a == address)

    def set_forward(self, user_id: int, target: str, keep: bool) -> None:
        with self._lock:
            if user_id not in self._users:
                raise NotFound(f"the user {user_id} does not exist")
            self._forwards[user_id] = Forward(user_id, target, keep)

    def clear_forward(self, user_id: int) -> bool:
        with self._lock:
            return self._forwards.pop(user_id, None) is not None

    def get_forward(self, user_id: int) -> Forward | None:
        with self._lock:
            return self._forwards.get(user_id)

    # ------------------------------------------------------------ folders
    def _new_uidvalidity(self, n: int = 1) -> int:
        """The first of n fresh UIDVALIDITY values: the clock in seconds, but
        always above every value handed out before, so a folder deleted and
        made again never shows clients an old UIDVALIDITY (RFC 3501 2.3.1.1)."""
        key = ("", self._UIDVALIDITY_KEY)
        first = max(int(time.time()), int(self._settings.get(key, "0")) + 1)
        self._settings[key] = str(first + n - 1)
        return first

    def _add_folder(self, user_id: int, name: str, uidvalidity: int,
                    special_use: str | None) -> _Folder:
        f = _Folder(self._next_id("folder"), user_id, name, uidvalidity, special_use=special_use)
        self._folders[f.id] = f
        return f

    def _find_folder(self, user_id: int, name: str) -> _Folder | None:
        return next((f for f in self._folders.values()
                     if f.user_id == user_id and f.name == name), None)

    def list_folders(self, user_id: int, *, counts: bool = False) -> list[Folder]:
        with self._lock:
            mine = sorted((f for f in self._folders.values() if f.user_id == user_id),
                          key=lambda f: f.id)
            if not counts:
                return [f.record() for f in mine]
            tally = {f.id: [0, 0, 0] for f in mine}
            for m in self._messages.values():
                if m.folder_id in tally:
                    t = tally[m.folder_id]
                    t[0] += 1
                    t[1] += "\\Seen" not in m.flags
                    t[2] += m.size
            return [f.record(*tally[f.id]) for f in mine]

    def get_folder(self, user_id: int, name: str) -> Folder | None:
        if name.upper() == "INBOX":
            name = "INBOX"
        with self._lock:
            f = self._find_folder(user_id, name)
            return f.record() if f else None

    def get_folder_by_id(self, folder_id: int) -> Folder | None:
        with self._lock:
            f = self._folders.get(folder_id)
            return f.record() if f else None

    def folder_counts(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
        with self._lock:
            tally = {int(f): [0, 0, 0] for f in folder_ids}
            for m in self._messages.values():
                if (t := tally.get(m.folder_id)) is not None:
                    t[0] += 1
                    t[1] += "\\Seen" not in m.flags
                    t[2] += m.size
            return {f: (t[0], t[1], t[2]) for f, t in tally.items()}

    def folder_versions(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """folder id -> (highestmodseq, uidnext): how IMAP sessions in IDLE
        notice changes made by others."""
        with self._lock:
            return {i: (f.highestmodseq, f.uidnext) for i in folder_ids
                    if (f := self._folders.get(i)) is not None}

    def create_folder(self, user_id: int, name: str, special_use: str | None = None) -> Folder:
        with self._lock:
            if user_id not in self._users:
                raise NotFound(f"the user {user_id} does not exist")
            if self._find_folder(user_id, name) is not None:
                raise AlreadyExists(f"the folder {name} already exists")
            return self._add_folder(user_id, name, self._new_uidvalidity(), special_use).record()

    def rename_folder(self, user_id: int, old: str, new: str) -> None:
        """Renames the folder and its children (hierarchy separator '/')."""
        with self._lock:
            if self._find_folder(user_id, new) is not None:
                raise AlreadyExists(f"the folder {new} already exists")
            src = self._find_folder(user_id, old)
            if src is None:
                raise NotFound(f"the folder {old} does not exist")
            if old == "INBOX":
                raise StoreError("renaming INBOX is not supported; copy its messages instead")
            mine = [f for f in self._folders.values() if f.user_id == user_id]
            renames = {f.id: new + f.name[len(old):] for f in mine
                       if f.id == src.id or f.name.startswith(old + "/")}
            # All or nothing: a child's new name may be taken too.
            if set(renames.values()) & {f.name for f in mine if f.id not in renames}:
                raise AlreadyExists(f"a folder under {new} already exists")
            for fid, name in renames.items():
                self._folders[fid].name = name
            subs = self._subscriptions.setdefault(user_id, set())
            moving = {n for n in subs if n == old or n.startswith(old + "/")}
            subs -= moving
            subs |= {new + n[len(old):] for n in moving}

    def delete_folder(self, user_id: int, name: str) -> None:
        if name.upper() == "INBOX":
            raise StoreError("INBOX cannot be deleted")
        with self._lock:
            f = self._find_folder(user_id, name)
            if f is None:
                raise NotFound(f"the folder {name} does not exist")
            gone = [m for m in self._messages.values() if m.folder_id == f.id]
            for m in gone:
                del self._messages[m.id]
            del self._folders[f.id]
            self._forget_vanished(set(self._folders))
            self._uncharge(user_id, sum(m.size for m in gone), len(gone))
            self._record_removed((m.blob_id, f.id, f.highestmodseq + 1) for m in gone)

    def set_subscribed(self, user_id: int, name: str, subscribed: bool) -> None:
        with self._lock:
            subs = self._subscriptions.setdefault(user_id, set())
            if subscribed:
                subs.add(name)
            else:
                subs.discard(name)

    def list_subscriptions(self, user_id: int) -> list[str]:
        with self._lock:
            return sorted(self._subscriptions.get(user_id, ()))

    def claim_recent(self, folder_id: int, top_uid: int) -> int:
        with self._lock:
            f = self._folders.get(folder_id)
            if f is None:
                return top_uid
            mark = f.recent_uid
            f.recent_uid = max(mark, top_uid)
            return mark

    # ----------------------------------------------------------- settings
    def get_setting(self, scope: str, key: str) -> str | None:
        with self._lock:
            return self._settings.get((scope, key))

    def set_setting(self, scope: str, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._settings.pop((scope, key), None)
            else:
                self._settings[(scope, key)] = value
