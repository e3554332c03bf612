"""SEARCH (RFC 3501 6.4.4, CONDSTORE's MODSEQ, ESEARCH's RETURN) over the
selected mailbox.

Keys on flags, UIDs, sizes, dates and modseqs are answered from memory; header
keys read the summary stored at delivery; BODY/TEXT/HEADER read the blob.
Those slow keys run in a worker thread, in batches, so the loop stays free.
Strings match case-insensitively as substrings after RFC 2047 and transfer
decoding (charset UTF-8 and US-ASCII).
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone

from ..mail.envelope import decode_words, field_value, scan_header, sent_day
from ..mail.mime import decoded_body, summarize
from ..store.interfaces import BlobMissing
from .mailbox import Mailbox
from .parser import SearchKey, SequenceSet

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "DELETED": ("\\Deleted", True), "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True), "SEEN": ("\\Seen", True), "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False), "UNDRAFT": ("\\Draft", False), "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_META_KEYS = frozenset(("FROM", "TO", "CC", "BCC", "SUBJECT", "SENTBEFORE", "SENTON", "SENTSINCE"))
_RAW_KEYS = frozenset(("BODY", "TEXT", "HEADER"))


def _walk(key: SearchKey):
    yield key
    for a in key.args:
        if isinstance(a, SearchKey):
            yield from _walk(a)


def needs(key: SearchKey) -> tuple[bool, bool, bool]:
    """(needs summaries, needs octets, uses MODSEQ)."""
    ops = {k.op for k in _walk(key)}
    raw = bool(ops & _RAW_KEYS)
    return raw or bool(ops & _META_KEYS), raw, "MODSEQ" in ops


def _day(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, timezone.utc).date()


def _addresses(env: dict, field: str) -> str:
    parts = []
    for name, _adl, mailbox, host in env.get(field) or ():
        if name:
            parts.append(decode_words(name))
        if mailbox:
            parts.append(f"{mailbox}@{host}" if host else mailbox)
    return " ".join(parts)


def _text_of(raw: bytes, node: dict, path: list[int], out: list[str], summary: dict, depth: int = 0) -> None:
    if depth > 32:
        return
    if "parts" in node:
        for n, child in enumerate(node["parts"], 1):
            _text_of(raw, child, path + [n], out, summary, depth + 1)
        return
    if node.get("type") == "text":
        data = decoded_body(raw, summary, path) if path else raw[node["bs"]:node["be"]]
        if not path and node.get("encoding") in ("base64", "quoted-printable"):
            data = decoded_body(raw, summary, [])
        charset = "utf-8"
        for k, v in node.get("params") or ():
            if k == "charset" and v.lower() not in ("us-ascii", "ascii"):
                charset = v  # undeclared or "ASCII" 8-bit text is UTF-8 in practice
        try:
            out.append((data or b"").decode(charset, "replace"))
        except LookupError:
            out.append((data or b"").decode("utf-8", "replace"))


class _Message:
    """Lazy access to one message's summary and octets during a search."""

    __slots__ = ("store", "blob_id", "meta", "_raw", "_body")

    def __init__(self, store, blob_id: str, meta) -> None:
        self.store, self.blob_id, self.meta = store, blob_id, meta
        self._raw: bytes | None = None
        self._body: str | None = None

    def raw(self) -> bytes:
        if self._raw is None:
            try:
                self._raw = self.store.blobs.read(self.blob_id)
            except (BlobMissing, OSError):
                self._raw = b""  # gone meanwhile: it matches nothing that needs its text
        return self._raw

    def summary(self) -> dict:
        if self.meta is None:
            self.meta = summarize(self.raw())
        return self.meta

    def body_text(self) -> str:
        if self._body is None:
            out: list[str] = []
            s = self.summary()
            _text_of(self.raw(), s["body"], [], out, s)
            self._body = "\n".join(out).casefold()
        return self._body

    def header_text(self) -> str:
        s = self.summary()
        return self.raw()[s["body"]["hs"]:s["body"]["he"]].decode("utf-8", "replace")


def _match(key: SearchKey, mb: Mailbox, i: int, n: int, msg: _Message | None, now: float) -> bool:
    op, a = key.op, key.args
    if op == "AND":
        return all(_match(k, mb, i, n, msg, now) for k in a)
    if op == "ALL":
        return True
    if op in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[op]
        return (flag in mb.flags[i]) == present
    if op == "RECENT":
        return mb.uids[i] in mb.recent
    if op == "NEW":
        return mb.uids[i] in mb.recent and "\\Seen" not in mb.flags[i]
    if op == "OLD":
        return mb.uids[i] not in mb.recent
    if op == "NOT":
        return not _match(a[0], mb, i, n, msg, now)
    if op == "OR":
        return _match(a[0], mb, i, n, msg, now) or _match(a[1], mb, i, n, msg, now)
    if op == "SEQ":
        return a[0].contains(i + 1, n)
    if op == "UID":
        return a[0].contains(mb.uids[i], mb.uids[-1] if mb.uids else 0)
    if op == "KEYWORD":
        return a[0] in mb.flags[i]
    if op == "UNKEYWORD":
        return a[0] not in mb.flags[i]
    if op == "LARGER":
        return mb.sizes[i] > a[0]
    if op == "SMALLER":
        return mb.sizes[i] < a[0]
    if op == "OLDER":
        return mb.dates[i] <= now - a[0]
    if op == "YOUNGER":
        return mb.dates[i] >= now - a[0]
    if op == "MODSEQ":
        return mb.modseqs[i] >= a[0]
    if op in ("BEFORE", "ON", "SINCE"):
        d = _day(mb.dates[i])
        return d < a[0] if op == "BEFORE" else d == a[0] if op == "ON" else d >= a[0]
    assert msg is not None
    if op in ("SENTBEFORE", "SENTON", "SENTSINCE"):
        d = sent_day((msg.summary().get("envelope") or {}).get("date"))
        if d is None:
            return False
        return d < a[0] if op == "SENTBEFORE" else d == a[0] if op == "SENTON" else d >= a[0]
    needle = a[-1].casefold()
    if op == "SUBJECT":
        return needle in (msg.summary().get("subject") or "").casefold()
    if op in ("FROM", "TO", "CC", "BCC"):
        return needle in _addresses(msg.summary().get("envelope") or {}, op.lower()).casefold()
    if op == "HEADER":
        raw = msg.raw()
        body = msg.summary()["body"]
        fields, _, _ = scan_header(raw, body["hs"], body["he"])
        name = a[0].lower()
        return any(f[0] == name and needle in decode_words(field_value(raw, f)).casefold() for f in fields)
    if op == "BODY":
        return needle in msg.body_text()
    if op == "TEXT":
        return needle in decode_words(msg.header_text()).casefold() or needle in msg.body_text()
    return False


def run_search(store, mb: Mailbox, key: SearchKey) -> list[int]:
    """Blocking: positions (0-based) of the messages matching key."""
    need_meta, need_raw, _ = needs(key)
    n = len(mb.uids)
    now = time.time()
    if not need_meta:
        return [i for i in range(n) if _match(key, mb, i, n, None, now)]
    out = []
    for start in range(0, n, 200):
        positions = range(start, min(n, start + 200))
        metas = {m.uid: m.meta for m in store.get_messages(mb.folder_id, [mb.uids[i] for i in positions])}
        for i in positions:
            msg = _Message(store, mb.blobs[i], metas.get(mb.uids[i]))
            if _match(key, mb, i, n, msg, now):
                out.append(i)
    return out


def has_saved(key: SearchKey) -> bool:
    return any(isinstance(x, SequenceSet) and x.saved for k in _walk(key) for x in k.args)


def response(tag: str, mb: Mailbox, found: list[int], uid: bool, returns, modseq: bool) -> bytes:
    """The untagged SEARCH (or ESEARCH, for RETURN) line."""
    numbers = [mb.uids[i] for i in found] if uid else [i + 1 for i in found]
    opts = set(returns or ()) or {"ALL"}
    # RFC 7162 3.1.5: with MIN and/or MAX alone, the modseq of the messages returned
    shown = found
    if returns is not None and found and not opts & {"ALL", "COUNT"}:
        shown = [found[0]] * ("MIN" in opts) + [found[-1]] * ("MAX" in opts)
    top = max((mb.modseqs[i] for i in shown), default=0)
    if returns is None:
        line = b"* SEARCH" + b"".join(b" %d" % x for x in numbers)
        if modseq and found:
            line += b" (MODSEQ %d)" % top
        return line + b"\r\n"
    parts = [b'* ESEARCH (TAG "%s")' % tag.encode()]
    if uid:
        parts.append(b"UID")
    if numbers and "MIN" in opts:
        parts.append(b"MIN %d" % numbers[0])
    if numbers and "MAX" in opts:
        parts.append(b"MAX %d" % numbers[-1])
    if "COUNT" in opts:
        parts.append(b"COUNT %d" % len(numbers))
    if numbers and "ALL" in opts:
        parts.append(b"ALL " + SequenceSet.from_ints(numbers).to_bytes())
    if modseq and found:
        parts.append(b"MODSEQ %d" % top)
    return b" ".join(parts) + b"\r\n"
