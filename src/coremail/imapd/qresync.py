"""QRESYNC (RFC 7162 3.2): what a client that cached a mailbox at some modseq
is told to catch up in one round trip: `* VANISHED (EARLIER)` for the UIDs
expunged since, then a FETCH (UID FLAGS MODSEQ) for each message changed
since, both limited to the UIDs the client says it knows.

The expunged UIDs come from the store's record (Store.vanished_since). Where
that record no longer reaches back to the client's modseq (it is trimmed
after store.interfaces.VANISHED_KEEP), the answer is every UID below UIDNEXT
that the folder no longer has, which RFC 7162 allows (a client ignores UIDs
it never had); the client's sequence-match data narrows it to the UIDs above
the highest message whose sequence number is still what the client had.
Only UIDs the session's view no longer shows are named: one that another
session expunged and this one has not yet been told of comes later as a
plain VANISHED, so sequence numbers stay right.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right

from .parser import SequenceSet

Ranges = list[tuple[int, int]]


def _absent(ranges: Ranges, uids: list[int]) -> Ranges:
    """The parts of the ranges that hold none of the (sorted) UIDs."""
    out: Ranges = []
    for lo, hi in ranges:
        at = lo
        for u in uids[bisect_left(uids, lo):bisect_right(uids, hi)]:
            if u > at:
                out.append((at, u - 1))
            at = u + 1
        if at <= hi:
            out.append((at, hi))
    return out


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out: Ranges = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _members(ss: SequenceSet, limit: int = 100_000) -> list[int] | None:
    """A set's numbers in the client's order; None for "*" or a huge set."""
    out: list[int] = []
    for lo, hi in ss.items:
        if lo is None or hi is None:
            return None
        out.extend(range(lo, hi + 1) if lo <= hi else range(lo, hi - 1, -1))
        if len(out) > limit:
            return None
    return out


def _unchanged_below(mb, seq_match) -> int:
    """The highest UID the client's sequence-match data shows at the same
    sequence number still: no message below it can have gone (0: none)."""
    if seq_match is None:
        return 0
    seqs, uids = (_members(x) for x in seq_match)
    if seqs is None or uids is None or len(seqs) != len(uids):
        return 0
    best = 0
    for seq, uid in zip(seqs, uids):
        if 1 <= seq <= len(mb.uids) and mb.uids[seq - 1] == uid:
            best = max(best, uid)
    return best


def vanished_earlier(store, mb, since: int, known: SequenceSet | None = None,
                     seq_match=None) -> bytes:
    """Blocking (one store query): the `* VANISHED (EARLIER)` line owed for
    what was expunged since modseq `since` among `known` (all UIDs if None),
    or b"" when there is nothing to say."""
    top = max(mb.uidnext - 1, mb.uids[-1] if mb.uids else 0)
    if top < 1:
        return b""
    ranges = store.vanished_since(mb.folder_id, since)
    if ranges is None:
        ranges = [(_unchanged_below(mb, seq_match) + 1, top)]
    ranges = _absent([r for r in ranges if r[0] <= r[1]], mb.uids)
    if known is not None:
        ranges = _intersect(ranges, known.ranges(top))
    if not ranges:
        return b""
    return b"* VANISHED (EARLIER) %s\r\n" % SequenceSet(ranges).to_bytes()


def changed_fetches(mb, since: int, known: SequenceSet | None = None) -> list[bytes]:
    """The FETCH (UID FLAGS MODSEQ) responses for the messages changed since
    modseq `since` among `known`, in sequence order."""
    top = max(mb.uidnext - 1, mb.uids[-1] if mb.uids else 0)
    out = []
    for i, (uid, modseq) in enumerate(zip(mb.uids, mb.modseqs)):
        if modseq > since and (known is None or known.contains(uid, top)):
            out.append(b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))\r\n"
                       % (i + 1, uid, mb.flags_out(i), modseq))
    return out


def catch_up(store, mb, q) -> list[bytes]:
    """Blocking: what SELECT (QRESYNC (...)) adds to the usual responses."""
    return [vanished_earlier(store, mb, q.modseq, q.known_uids, q.seq_match),
            *changed_fetches(mb, q.modseq, q.known_uids)]
