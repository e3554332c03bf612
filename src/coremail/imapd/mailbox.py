"""The selected mailbox as one session sees it: sequence numbers <-> UIDs,
flags, modseqs, and the untagged updates owed to the client.

Parallel lists (uids, flags, modseqs, sizes, dates, blobs) instead of an
object per message keep 100,000 messages a few MB and a SELECT a single
lean query (store.message_index). Identical flag sets share one frozenset.
Changes made elsewhere (another session or process, POP3, SMTP) are found by
comparing the folder's (highestmodseq, uidnext) and then asking only for the
rows changed since; expunges are found by diffing the UID list.

\\Recent (RFC 3501 2.3.2) is a set of UIDs this session owns: a read-write
session claims the UIDs above the folder's recent mark in the store
(store.claim_recent, atomic across processes) when it selects the folder and
when new messages appear; a read-only one shows those above the mark and
claims nothing.
"""
from __future__ import annotations

from bisect import bisect_left

from ..store.interfaces import StorageFull
from .parser import SequenceSet, format_flags

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_EMPTY: frozenset[str] = frozenset()


class FlagTable:
    """Interns flag sets: thousands of messages with the same flags share one set."""

    def __init__(self) -> None:
        self._by_text: dict[str, frozenset[str]] = {"": _EMPTY}

    def from_text(self, text: str) -> frozenset[str]:
        got = self._by_text.get(text)
        if got is None:
            got = self._by_text[text] = frozenset(text.split())
        return got

    def intern(self, flags: frozenset[str]) -> frozenset[str]:
        return self.from_text(" ".join(sorted(flags)))


class Mailbox:
    __slots__ = ("folder_id", "name", "readonly", "uidvalidity", "uidnext", "highestmodseq",
                 "uids", "flags", "modseqs", "sizes", "dates", "blobs", "table", "keywords",
                 "recent")

    def __init__(self, folder, readonly: bool) -> None:
        self.folder_id = folder.id
        self.name = folder.name
        self.readonly = readonly
        self.uidvalidity = folder.uidvalidity
        self.uidnext = folder.uidnext
        self.highestmodseq = folder.highestmodseq
        self.uids: list[int] = []
        self.flags: list[frozenset[str]] = []
        self.modseqs: list[int] = []
        self.sizes: list[int] = []
        self.dates: list[float] = []
        self.blobs: list[str] = []
        self.table = FlagTable()
        self.keywords: set[str] = set()
        self.recent: set[int] = set()

    # ------------------------------------------------------------ loading
    @classmethod
    def load(cls, store, folder, readonly: bool) -> "Mailbox":
        """Blocking (run in a thread): the folder's state, no meta, no blobs."""
        mb = cls(folder, readonly)
        mb._append_rows(store.message_index(folder.id))
        mb._claim_recent(store, folder, mb.uids)
        return mb

    def _claim_recent(self, store, folder, new_uids) -> None:
        """The new UIDs that are this session's \\Recent ones."""
        if not new_uids or new_uids[-1] <= folder.recent_uid:   # all claimed already: no query
            return
        mark = folder.recent_uid
        if not self.readonly:
            try:
                mark = store.claim_recent(self.folder_id, new_uids[-1])
            except StorageFull:
                # A full disk must not stop anyone reading mail: the new
                # messages are just not \Recent for this session.
                mark = new_uids[-1]
        self.recent.update(u for u in new_uids if u > mark)

    def _append_rows(self, rows) -> None:
        intern = self.table.from_text
        for uid, flags, modseq, size, date, blob in rows:
            self.uids.append(uid)
            f = intern(flags)
            self.flags.append(f)
            self.modseqs.append(modseq)
            self.sizes.append(size)
            self.dates.append(date)
            self.blobs.append(blob)
            if f:
                self.keywords.update(x for x in f if not x.startswith("\\"))

    # ------------------------------------------------------------ lookup
    def __len__(self) -> int:
        return len(self.uids)

    def index_of(self, uid: int) -> int:
        """0-based position of a UID, or -1."""
        i = bisect_left(self.uids, uid)
        return i if i < len(self.uids) and self.uids[i] == uid else -1

    def resolve(self, seqset: SequenceSet, uid: bool) -> list[int] | None:
        """Positions (0-based, ascending) named by a set; None when a sequence
        number is beyond the mailbox (RFC 3501: BAD). UIDs that do not exist are
        ignored."""
        n = len(self.uids)
        if not uid:
            if seqset.max_value(n) > n:
                return None
            return [s - 1 for s in seqset.iter(n)]
        uids = self.uids
        star = uids[-1] if uids else 0
        out = []
        for lo, hi in seqset.ranges(star):
            out.extend(range(bisect_left(uids, lo), bisect_left(uids, hi + 1)))
        return out

    def flags_out(self, i: int) -> bytes:
        """The FLAGS of position i as a response shows them (\\Recent included)."""
        f = self.flags[i]
        if self.uids[i] in self.recent:
            return format_flags(("\\Recent", *f))
        return format_flags(f)

    def flag_names(self) -> bytes:
        return format_flags(SYSTEM_FLAGS + tuple(sorted(self.keywords)))

    def permanent_flags(self) -> bytes:
        return format_flags(SYSTEM_FLAGS + tuple(sorted(self.keywords)) + ("\\*",))

    def flags_update(self, before: set[str]) -> list[bytes]:
        """The FLAGS and PERMANENTFLAGS responses owed when the keywords in
        use are no longer `before` (a keyword appeared)."""
        if self.keywords == before:
            return []
        perm = b"()" if self.readonly else self.permanent_flags()
        return [b"* FLAGS " + self.flag_names() + b"\r\n",
                b"* OK [PERMANENTFLAGS " + perm + b"] Flags allowed\r\n"]

    def first_unseen(self) -> int:
        for i, f in enumerate(self.flags):
            if "\\Seen" not in f:
                return i + 1
        return 0

    # ------------------------------------------------------------ own changes
    def set_flags(self, uid: int, flags: frozenset[str], modseq: int) -> int:
        """Record a flag change this session made; returns the position or -1."""
        i = self.index_of(uid)
        if i >= 0:
            f = self.table.intern(flags)
            self.flags[i] = f
            self.modseqs[i] = modseq
            self.keywords.update(x for x in f if not x.startswith("\\"))
        return i

    def remove(self, uids, vanished: bool = False) -> list[bytes]:
        """Forget expunged UIDs; the EXPUNGE responses, highest position first
        so each number is right when the client reads it, or with QRESYNC
        enabled one VANISHED response (RFC 7162 3.2.10)."""
        positions = sorted((i for i in map(self.index_of, uids) if i >= 0), reverse=True)
        out = []
        gone = []
        for i in positions:
            gone.append(self.uids[i])
            self.recent.discard(self.uids[i])
            for arr in (self.uids, self.flags, self.modseqs, self.sizes, self.dates, self.blobs):
                del arr[i]
            out.append(b"* %d EXPUNGE\r\n" % (i + 1))
        if vanished:
            return [b"* VANISHED %s\r\n" % SequenceSet.from_ints(gone).to_bytes()] if gone else []
        return out

    def in_ranges(self, ranges) -> list[int]:
        """The UIDs of this view that lie in the (lo, hi) ranges."""
        out: list[int] = []
        for lo, hi in ranges:
            out.extend(self.uids[bisect_left(self.uids, lo):bisect_left(self.uids, hi + 1)])
        return out

    # ------------------------------------------------------------ others' changes
    def changed(self, version: tuple[int, int]) -> bool:
        return version != (self.highestmodseq, self.uidnext)

    def refresh(self, store, folder, allow_expunge: bool, condstore: bool,
                qresync: bool = False) -> list[bytes]:
        """Blocking: bring the state up to the folder row just read, returning
        the untagged responses (EXPUNGE, EXISTS, FETCH FLAGS) for the client.
        Without allow_expunge (during FETCH, STORE, SEARCH) nothing is done."""
        if not allow_expunge or not self.changed((folder.highestmodseq, folder.uidnext)):
            return []
        rows = store.message_index(self.folder_id, changed_since=self.highestmodseq)
        out: list[bytes] = []
        keywords = set(self.keywords)
        # every modseq bump is a changed/new row, or an expunge (which leaves
        # none); more bumps than distinct row modseqs means something went away
        # (rows changed after the folder row was read do not count)
        top = folder.highestmodseq
        gap = top - self.highestmodseq > len({r[2] for r in rows if r[2] <= top})
        if gap and self.uids:
            ranges = store.vanished_since(self.folder_id, self.highestmodseq)
            if ranges is not None:
                gone = self.in_ranges(ranges)
            else:   # the record was trimmed: compare the UID lists
                present = set(store.message_uids(self.folder_id))
                gone = [u for u in self.uids if u not in present]
            if gone:
                out.extend(self.remove(gone, qresync))
        old_top = self.uids[-1] if self.uids else 0
        fresh = []
        for row in rows:
            uid = row[0]
            if uid > old_top:
                fresh.append(row)
                continue
            i = self.index_of(uid)
            if i < 0:
                continue
            flags = self.table.from_text(row[1])
            if flags is not self.flags[i] or (condstore and row[2] != self.modseqs[i]):
                self.flags[i] = flags
                self.modseqs[i] = row[2]
                self.keywords.update(x for x in flags if not x.startswith("\\"))
                extra = b" MODSEQ (%d)" % row[2] if condstore else b""
                out.append(b"* %d FETCH (UID %d FLAGS %s%s)\r\n" % (i + 1, uid, self.flags_out(i), extra))
            else:
                self.modseqs[i] = row[2]
        if fresh:
            self._append_rows(fresh)
            before = len(self.recent)
            self._claim_recent(store, folder, [r[0] for r in fresh])
            got_recent = len(self.recent) != before
        update = self.flags_update(keywords)
        if update:
            # before any FETCH or EXISTS that may use a new keyword
            at = next((k for k, line in enumerate(out) if not line.endswith(b"EXPUNGE\r\n")
                       and not line.startswith(b"* VANISHED ")), len(out))
            out[at:at] = update
        if fresh:
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
            if got_recent:
                out.append(b"* %d RECENT\r\n" % len(self.recent))
        self.highestmodseq = folder.highestmodseq
        self.uidnext = folder.uidnext
        return out
