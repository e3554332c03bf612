"""SORT (RFC 5256), ESORT (RFC 5267) and SORT=DISPLAY (RFC 5957) over the
selected mailbox, and the base subject both SORT and THREAD compare.

Hand-written: the base-subject rules (RFC 5256 2.1: "Re:", "Fwd:", "[blob]"
and "(fwd)" stripped in a fixed order) and the key definitions are the RFC's
own, and no maintained library implements them. The summaries stored at
delivery give every key but ARRIVAL and SIZE, which the Mailbox has; ties go
to the lower sequence number whatever the REVERSE keys (RFC 5256 3).
"""
from __future__ import annotations

import re
import string

from ..mail.envelope import decode_words
from .mailbox import Mailbox

_WS = re.compile(r"\s+")
_TRAILER = re.compile(r"(?:\s|\(fwd\))+$", re.I)
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER = re.compile(rf"(?:(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:|\s+)", re.I)
_BLOB_RX = re.compile(_BLOB)
_FWD_HDR, _FWD_TRL = "[FWD:", "]"
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)  # i;ascii-casemap


def _extract(subject: str | None) -> tuple[str, bool]:
    """RFC 5256 2.1: (the base subject upper-cased, whether a reply/forward
    marker was taken off)."""
    s = _WS.sub(" ", decode_words(subject or ""))
    reply = False
    while True:
        m = _TRAILER.search(s)                           # (2)
        if m is not None:
            reply = reply or "(" in m.group()
            s = s[:m.start()]
        while True:                                      # (3)-(5)
            before = s
            while (m := _LEADER.match(s)) is not None and m.end():
                reply = reply or bool(m.group().strip())
                s = s[m.end():]
            m = _BLOB_RX.match(s)
            if m is not None and s[m.end():]:
                s = s[m.end():]
            if s == before:
                break
        if s[:5].upper() == _FWD_HDR and s.endswith(_FWD_TRL):   # (6)
            s, reply = s[5:-1], True
            continue
        return s.translate(_ASCII_UPPER), reply


def base_subject(subject: str | None) -> str:
    """What SORT (SUBJECT) and THREAD compare (i;ascii-casemap)."""
    return _extract(subject)[0]


def subject_is_reply(subject: str | None) -> bool:
    return _extract(subject)[1]


def _first(env: dict, field: str):
    for addr in env.get(field) or ():
        return addr
    return None


def _mailbox_key(env: dict, field: str) -> str:
    a = _first(env, field)
    return (a[2] or "").translate(_ASCII_UPPER) if a else ""


def _display_key(env: dict, field: str) -> str:
    a = _first(env, field)
    if not a:
        return ""
    name = decode_words(a[0]).strip() if a[0] else ""
    return (name or (f"{a[2]}@{a[3]}" if a[3] else (a[2] or ""))).casefold()


def sort_value(key: str, mb: Mailbox, i: int, meta: dict | None):
    if key == "ARRIVAL":
        return mb.dates[i]
    if key == "SIZE":
        return mb.sizes[i]
    meta = meta or {}
    env = meta.get("envelope") or {}
    if key == "DATE":
        epoch = meta.get("date_epoch")
        return epoch if epoch is not None else mb.dates[i]
    if key == "SUBJECT":
        return base_subject(env.get("subject"))
    if key in ("FROM", "TO", "CC"):
        return _mailbox_key(env, key.lower())
    return _display_key(env, "from" if key == "DISPLAYFROM" else "to")


def metas(store, mb: Mailbox, positions: list[int]) -> dict[int, dict | None]:
    """Blocking: position -> the summary stored at delivery, 500 a query."""
    out: dict[int, dict | None] = {}
    for start in range(0, len(positions), 500):
        chunk = positions[start:start + 500]
        by_uid = {m.uid: m.meta for m in store.get_messages(mb.folder_id, [mb.uids[i] for i in chunk])}
        for i in chunk:
            out[i] = by_uid.get(mb.uids[i])
    return out


def run_sort(store, mb: Mailbox, keys, found: list[int]) -> list[int]:
    """Blocking: the positions found, in the order of the sort keys."""
    needs_meta = any(k not in ("ARRIVAL", "SIZE") for k, _ in keys)
    meta = metas(store, mb, found) if needs_meta else {}
    order = sorted(found)
    for key, reverse in reversed(keys):   # stable sorts, last key first
        values = {i: sort_value(key, mb, i, meta.get(i)) for i in order}
        order.sort(key=values.__getitem__, reverse=reverse)
    return order


def response(tag: str, mb: Mailbox, order: list[int], uid: bool, returns) -> bytes:
    numbers = [mb.uids[i] for i in order] if uid else [i + 1 for i in order]
    if returns is None:
        return b"* SORT" + b"".join(b" %d" % n for n in numbers) + b"\r\n"
    opts = set(returns) or {"ALL"}
    parts = [b'* ESEARCH (TAG "%s")' % tag.encode()]
    if uid:
        parts.append(b"UID")
    if numbers and "MIN" in opts:
        parts.append(b"MIN %d" % min(numbers))
    if numbers and "MAX" in opts:
        parts.append(b"MAX %d" % max(numbers))
    if "COUNT" in opts:
        parts.append(b"COUNT %d" % len(numbers))
    if numbers and "ALL" in opts:
        parts.append(b"ALL " + _ordered_set(numbers))
    return b" ".join(parts) + b"\r\n"


def _ordered_set(numbers: list[int]) -> bytes:
    """A sequence set that keeps the sort order (RFC 5267 3.2): ascending runs
    become ranges, nothing is reordered."""
    out: list[bytes] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
        if n is not None:
            start = prev = n
    return b",".join(out)
