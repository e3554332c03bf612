"""A POP3 maildrop: the user's INBOX as it was at login, its exclusive lock,
and the deletions applied at QUIT. No protocol here.

- Snapshot: the message list is read once at login, so mail that arrives
  during a session appears in the next one (message numbers never shift).
- Lock: one POP3 session per user at a time (RFC 1939 "exclusive-access
  lock"), across every worker process: `fcntl.flock` on
  DIR/run/locks/pop3-<user id>.lock. The kernel drops it when the session's
  file is closed or its process dies, so a crash never leaves a stale lock.
  Several nodes (a shared store): the lock is a lease row in the store
  instead (`MaildropLeases`), renewed while the session lasts; a node that
  dies holds its users' maildrops until the lease runs out (LEASE_TTL).
- UIDL: "<INBOX uidvalidity>.<uid>": the uid never changes or gets reused
  in a folder, and a recreated INBOX gets a new uidvalidity, so a
  leave-on-server client never mistakes a new message for an old one.
- Sizes: the octets RETR sends (see wire.py). Blobs are immutable, so that
  size is cached per blob id for the life of the process; a blob is read only
  the first time a worker meets it (like a virtual-size index cache).
- Bytes: by blob id through `Store.blobs`; the maildrop never sees a file.
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import itertools
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..store.interfaces import BlobMissing, Blobs, Store
from .wire import wire_size_of


class LockBusy(Exception):
    """Another session holds this user's maildrop."""


@dataclass(slots=True)
class Entry:
    number: int
    message_id: int
    uidl: str
    blob_id: str           # for messages that came by SMTP, also the queue id
    stored_size: int
    size: int              # octets RETR sends (normalised, before dot-stuffing)
    deleted: bool = False

    @property
    def clean(self) -> bool:
        # Normalising only ever adds octets: equal sizes mean the blob is sent as stored.
        return self.size == self.stored_size


class SizeCache:
    """blob id -> wire size; shared by the sessions of one worker."""

    def __init__(self, max_entries: int = 500_000):
        self.max_entries = max_entries
        self._sizes: dict[str, int] = {}

    def get(self, blob_id: str, blobs: Blobs) -> int:
        """The wire size of a blob; BlobMissing if it is gone."""
        size = self._sizes.get(blob_id)
        if size is None:
            with blobs.open(blob_id) as f:
                size = wire_size_of(f)
            if len(self._sizes) >= self.max_entries:
                self._sizes.clear()
            self._sizes[blob_id] = size
        return size


class MaildropLock:
    """The per-user exclusive lock (see the module docstring)."""

    in_thread = False   # acquire() never blocks: call it on the event loop

    def __init__(self, lock_dir: Path, user_id: int):
        self.path = Path(lock_dir) / f"pop3-{user_id}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockBusy("the maildrop is in use by another session") from None
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


LEASE_TTL = 60.0     # seconds a maildrop lease lasts unless renewed
LEASE_RENEW = 20.0   # how often a process renews the leases it holds


class MaildropLeases:
    """The maildrop locks of one POP3 process over the store's leases, for
    several nodes: each session's lock has its own owner name
    ("host:pid:token:n"), and one task renews them all (`run`)."""

    def __init__(self, store: Store):
        self.store = store
        self.prefix = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.held: dict[str, str] = {}      # owner -> lease name
        self._n = itertools.count(1)

    def lock(self, user_id: int) -> "LeaseLock":
        return LeaseLock(self, user_id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW)
            for owner in list(self.held):
                try:
                    await asyncio.to_thread(self.store.lease_renew, owner, time.time() + LEASE_TTL)
                except Exception:  # noqa: BLE001 - retried at the next round
                    pass

    def release_all(self) -> None:
        """Blocking: every lease still held (a stopping service)."""
        for owner in list(self.held):
            self.held.pop(owner, None)
            self.store.lease_release(owner)


class LeaseLock:
    in_thread = True    # acquire() asks the store: call it in a thread

    def __init__(self, leases: MaildropLeases, user_id: int):
        self.leases = leases
        self.name = f"pop3:{user_id}"
        self.owner = f"{leases.prefix}:{next(leases._n)}"

    def acquire(self) -> None:
        """Blocking (the store): run it in a thread."""
        if not self.leases.store.lease_acquire(self.name, self.owner, time.time() + LEASE_TTL):
            raise LockBusy("the maildrop is in use by another session")
        self.leases.held[self.owner] = self.name

    def release(self) -> None:
        """Called on the event loop: the store write goes to a thread."""
        if self.leases.held.pop(self.owner, None) is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.leases.store.lease_release(self.owner)
            return
        loop.run_in_executor(None, self.leases.store.lease_release, self.owner)


@dataclass
class Maildrop:
    user_id: int
    entries: list[Entry] = field(default_factory=list)
    # the INBOX and its modseq when snapshotted: the session holds that view
    # (services.views) so no blob of the snapshot is purged before QUIT
    folder_id: int = 0
    modseq: int = 0

    @classmethod
    def load(cls, store: Store, user_id: int, sizes: SizeCache) -> "Maildrop":
        """Snapshot the INBOX (blocking: run in a thread)."""
        folder = store.get_folder(user_id, "INBOX")
        if folder is None:
            return cls(user_id)
        entries = []
        for n, m in enumerate(store.list_messages(folder.id), 1):
            try:
                size = sizes.get(m.blob_id, store.blobs)
            except BlobMissing:
                continue  # removed since the listing (IMAP expunge): not in this snapshot
            entries.append(Entry(n, m.id, f"{folder.uidvalidity}.{m.uid}", m.blob_id, m.size, size))
        for i, e in enumerate(entries, 1):
            e.number = i
        return cls(user_id, entries, folder.id, folder.highestmodseq)

    def get(self, number: int) -> Entry | None:
        """The message numbered `number`, unless it is out of range or deleted."""
        if 1 <= number <= len(self.entries):
            e = self.entries[number - 1]
            if not e.deleted:
                return e
        return None

    def live(self) -> list[Entry]:
        return [e for e in self.entries if not e.deleted]

    def stat(self) -> tuple[int, int]:
        live = self.live()
        return len(live), sum(e.size for e in live)

    def reset(self) -> None:
        for e in self.entries:
            e.deleted = False

    def marked(self) -> list[int]:
        return [e.message_id for e in self.entries if e.deleted]

    @staticmethod
    def commit(store: Store, user_id: int, message_ids: Sequence[int]) -> int:
        """Apply the deletions (blocking: run in a thread); frees quota."""
        return store.delete_messages(user_id, list(message_ids)) if message_ids else 0
