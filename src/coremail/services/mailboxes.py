"""Mailbox use-cases shared by IMAP and the webmail: folder names, create
with parents, rename (INBOX's special rule), delete, append through the
ingest service, move, flags, and emptying a folder. Blocking methods read
and write the store (run them in a thread); `append` is async.

Refusals are `MailboxError` with a reason that names the case (the IMAP
response codes are good names: CANNOT, ALREADYEXISTS, NONEXISTENT, TRYCREATE,
OVERQUOTA, TOOBIG), so each front end says it in its own words."""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..ingest import Ingest, Job, LocalCopy, new_qid
from ..store.interfaces import (AlreadyExists, FlagMode, Folder, Message, NotFound,
                                QuotaExceeded, Store, StoreError, User)
from .spamlearn import Learner

SEP = "/"
SPECIAL_USES = ("\\Drafts", "\\Sent", "\\Junk", "\\Trash", "\\Archive", "\\All", "\\Flagged")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f%*]")


class MailboxError(Exception):
    def __init__(self, text: str, reason: str):
        super().__init__(text)
        self.text = text
        self.reason = reason


@dataclass(frozen=True)
class NewMessage:
    content: bytes
    flags: frozenset[str] = frozenset()
    internaldate: float | None = None


def folder_name(raw: str) -> str:
    """A valid folder name (trailing separators dropped, INBOX in any case
    is INBOX), or MailboxError CANNOT."""
    name = raw.rstrip(SEP)
    if not name or _BAD_NAME.search(name) or SEP * 2 in name or name.startswith(SEP):
        raise MailboxError(f"{raw[:100]!r} is not a valid mailbox name", "CANNOT")
    return "INBOX" if name.upper() == "INBOX" else name


class Mailboxes:
    def __init__(self, store: Store, ingest: Ingest | None = None,
                 max_size: Callable[[], int] | None = None, learner: Learner | None = None):
        self.store = store
        self.ingest = ingest
        self.max_size = max_size
        self.learner = learner   # trains the intelligent score from moves in and out of Junk

    # ------------------------------------------------------------ folders
    def create(self, user_id: int, raw_name: str, special_use: str | None = None) -> Folder:
        """Create a folder and any missing parents."""
        name = folder_name(raw_name)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise MailboxError(f"{special_use} is not a special use this server knows", "USEATTR")
        self._parents(user_id, name)
        try:
            return self.store.create_folder(user_id, name, special_use)
        except AlreadyExists:
            raise MailboxError(f"Mailbox {name[:200]} already exists", "ALREADYEXISTS") from None

    def _parents(self, user_id: int, name: str) -> None:
        parts = name.split(SEP)
        for depth in range(1, len(parts)):
            parent = SEP.join(parts[:depth])
            if self.store.get_folder(user_id, parent) is None:
                try:
                    self.store.create_folder(user_id, parent)
                except AlreadyExists:
                    pass

    def delete(self, user_id: int, raw_name: str) -> str:
        name = folder_name(raw_name)
        if name == "INBOX":
            raise MailboxError("INBOX cannot be deleted", "CANNOT")
        try:
            self.store.delete_folder(user_id, name)
        except NotFound:
            raise MailboxError(f"No mailbox {name[:200]}", "NONEXISTENT") from None
        return name

    def rename(self, user_id: int, raw_old: str, raw_new: str) -> None:
        """RFC 3501 6.3.5: renaming INBOX moves its messages to the new name
        and leaves INBOX empty; other folders move with their children."""
        old, new = folder_name(raw_old), folder_name(raw_new)
        if new == "INBOX":
            raise MailboxError("A mailbox cannot be renamed to INBOX", "ALREADYEXISTS")
        try:
            if old == "INBOX":
                inbox = self.store.get_folder(user_id, "INBOX")
                assert inbox is not None
                dest = self.store.create_folder(user_id, new)
                uids = self.store.message_uids(inbox.id)
                if uids:
                    self.store.copy_messages(inbox.id, uids, dest.id, move=True)
                return
            if new.startswith(old + SEP):
                raise MailboxError("A mailbox cannot be moved into itself", "CANNOT")
            parent = new.rpartition(SEP)[0]
            if parent and self.store.get_folder(user_id, parent) is None:
                self._parents(user_id, new)
            self.store.rename_folder(user_id, old, new)
        except AlreadyExists:
            raise MailboxError(f"Mailbox {new[:200]} already exists", "ALREADYEXISTS") from None
        except NotFound:
            raise MailboxError(f"No mailbox {old[:200]}", "NONEXISTENT") from None

    # ------------------------------------------------------------ messages
    async def append(self, user: User, folder: Folder, messages: Sequence[NewMessage]
                     ) -> list[int]:
        """Store messages in one of the user's folders through the ingest
        service (blob, summary, quota, group commit); all or none."""
        assert self.ingest is not None
        limit = self.max_size() if self.max_size is not None else 0
        for m in messages:
            if limit and len(m.content) > limit:
                raise MailboxError("The message is larger than this server accepts", "TOOBIG")
        jobs = [Job(qid=new_qid(), sender="", parts=[m.content], report_failures=False,
                    local=[LocalCopy(user, folder.name,
                                     frozenset(f for f in m.flags if f != "\\Recent"),
                                     m.internaldate or time.time())])
                for m in messages]
        if len(jobs) == 1:   # joins the next group commit with everyone else's mail
            done = [await self.ingest.submit(jobs[0])]
        else:   # MULTIAPPEND (RFC 3502): one transaction of their own, all or none
            done = await asyncio.to_thread(self.ingest.commit_now, jobs, True)
        bad = next((j for j in done if not j.stored), None)
        if bad is not None:
            err = bad.failed[0][1] if bad.failed else bad.error
            raise _refusal(err, folder.name)
        return [j.stored[0][1].uid for j in done]

    def set_flags(self, folder_id: int, uids: Sequence[int], flags: frozenset[str],
                  mode: FlagMode, unchanged_since: int | None = None) -> list[Message]:
        return self.store.set_flags(folder_id, uids, flags, mode, unchanged_since=unchanged_since)

    def move(self, user_id: int, folder_id: int, uids: Sequence[int], dest_name: str, *,
             copy: bool = False) -> tuple[Folder, list[tuple[int, int]]]:
        try:
            dest = self.store.get_folder(user_id, folder_name(dest_name))
        except MailboxError:   # no folder can have such a name
            dest = None
        if dest is None:
            raise MailboxError(f"No mailbox {dest_name[:200]}", "TRYCREATE")
        if not uids:
            return dest, []
        try:
            pairs = self.store.copy_messages(folder_id, uids, dest.id, move=not copy)
        except QuotaExceeded:
            raise MailboxError("The mailbox is over its quota", "OVERQUOTA") from None
        if self.learner is not None and folder_id != dest.id:
            # Queued, decided and trained on the learner's thread: the move returns now.
            self.learner.moved(user_id, folder_id, dest, [new for _, new in pairs])
        return dest, pairs

    def empty(self, folder_id: int) -> int:
        """Remove every message of a folder for good (emptying Trash or Junk)."""
        uids = self.store.message_uids(folder_id)
        return len(self.store.expunge(folder_id, uids)) if uids else 0


def _refusal(err: StoreError | None, folder: str) -> Exception:
    if isinstance(err, QuotaExceeded):
        return MailboxError("The mailbox is over its quota", "OVERQUOTA")
    if isinstance(err, NotFound):
        return MailboxError(f"No mailbox {folder[:200]}", "TRYCREATE")
    return err if err is not None else MailboxError("The message could not be stored",
                                                   "SERVERBUG")
