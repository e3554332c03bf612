"""THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over the selected
mailbox, and the THREAD response.

Hand-written: the two algorithms are the RFC's own (REFERENCES is its
version of Zawinski's threading, with its own rules for loops, dummies and
subject merging), and no maintained library implements them for IMAP.
Message-ID and In-Reply-To come from the envelope stored at delivery; the
References field is read from the message's header. A message's parent link
is always the one its own fields give (RFC 5256 step 1B), never a loop.
"""
from __future__ import annotations

import re

from ..mail.envelope import field_value, scan_header
from ..store.interfaces import BlobMissing
from .mailbox import Mailbox
from .sort import base_subject, metas, subject_is_reply

_MSGID = re.compile(r"<[^<>\s]+>")


class _Node:
    __slots__ = ("pos", "parent", "children", "date")

    def __init__(self) -> None:
        self.pos: int | None = None       # the message's position; None: a dummy
        self.parent: _Node | None = None
        self.children: list[_Node] = []
        self.date = 0.0

    def is_ancestor_of(self, other: "_Node") -> bool:
        n: _Node | None = other
        while n is not None:
            if n is self:
                return True
            n = n.parent
        return False

    def adopt(self, child: "_Node") -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)


def _references(store, blob_id: str, meta: dict) -> list[str]:
    body = meta.get("body") or {}
    try:
        raw = store.blobs.read(blob_id, 0, body.get("he", 0))
    except (BlobMissing, OSError):
        return []
    fields, _, _ = scan_header(raw, 0, len(raw))
    for f in fields:
        if f[0] == "references":
            return _MSGID.findall(field_value(raw, f))
    return []


def _info(store, mb: Mailbox, positions: list[int], want_refs: bool) -> dict[int, dict]:
    """Blocking: per position its subject, sent date and (REFERENCES) ids."""
    out = {}
    for i, meta in metas(store, mb, positions).items():
        meta = meta or {}
        env = meta.get("envelope") or {}
        subject = env.get("subject")
        epoch = meta.get("date_epoch")
        item = {"base": base_subject(subject), "reply": subject_is_reply(subject),
                "date": epoch if epoch is not None else mb.dates[i]}
        if want_refs:
            ids = _MSGID.findall(env.get("message_id") or "")
            refs = _references(store, mb.blobs[i], meta)
            if not refs:
                refs = _MSGID.findall(env.get("in_reply_to") or "")[:1]
            item["id"], item["refs"] = (ids[0] if ids else None), refs
        out[i] = item
    return out


def _sort_key(n: _Node) -> tuple[float, int]:
    return (n.date, n.pos if n.pos is not None else 1 << 62)


def _ordered_subject(info: dict[int, dict], found: list[int]) -> list[_Node]:
    roots: dict[str, _Node] = {}
    out = []
    for i in sorted(found, key=lambda i: (info[i]["base"], info[i]["date"], i)):
        n = _Node()
        n.pos, n.date = i, info[i]["date"]
        root = roots.get(info[i]["base"])
        if root is None:
            roots[info[i]["base"]] = n
            out.append(n)
        else:
            root.adopt(n)   # the first of a subject is the parent of the rest, in date order
    out.sort(key=_sort_key)
    return out


def _references_threads(info: dict[int, dict], found: list[int]) -> list[_Node]:
    table: dict[str, _Node] = {}

    def node_for(msgid: str) -> _Node:
        n = table.get(msgid)
        if n is None:
            n = table[msgid] = _Node()
        return n

    for i in sorted(found):
        it = info[i]
        msgid = it["id"]
        if msgid is None or (msgid in table and table[msgid].pos is not None):
            msgid = f"<dup-{i}>"   # no Message-ID, or a duplicate: a container of its own
        me = node_for(msgid)
        me.pos = i
        refs = [r for r in it["refs"] if r != msgid]
        for parent_id, child_id in zip(refs, refs[1:]):            # (1A)
            parent, child = node_for(parent_id), node_for(child_id)
            if child.parent is None and not child.is_ancestor_of(parent):
                parent.adopt(child)
        if me.parent is not None:                                  # (1B): its own fields decide
            me.parent.children.remove(me)
            me.parent = None
        if refs:
            parent = node_for(refs[-1])
            if not me.is_ancestor_of(parent):
                parent.adopt(me)
    roots = _prune([n for n in table.values() if n.parent is None], top=True)
    roots = _merge_subjects(roots, info)
    _date(roots, info)
    return roots


def _prune(nodes: list[_Node], top: bool) -> list[_Node]:
    """(4): dummies without children go; a dummy's children take its place,
    except a top-level dummy with several children."""
    out = []
    for n in nodes:
        n.children = _prune(n.children, top=False)
        for c in n.children:
            c.parent = n
        if n.pos is None and (not n.children or not top or len(n.children) == 1):
            for c in n.children:
                c.parent = n.parent if not top else None
            out.extend(n.children)
        else:
            out.append(n)
    return out


def _subject_of(n: _Node, info) -> tuple[str, bool]:
    m = n if n.pos is not None else (n.children[0] if n.children else None)
    if m is None or m.pos is None:
        return "", False
    return info[m.pos]["base"], info[m.pos]["reply"]


def _merge_subjects(roots: list[_Node], info) -> list[_Node]:
    """(5): threads whose roots share a base subject are put together."""
    table: dict[str, _Node] = {}
    for n in roots:
        subject, reply = _subject_of(n, info)
        if not subject:
            continue
        old = table.get(subject)
        if old is None or (n.pos is None and old.pos is not None) or (
                old.pos is not None and _subject_of(old, info)[1] and not reply):
            table[subject] = n
    out: list[_Node] = []
    for n in roots:
        subject, reply = _subject_of(n, info)
        into = table.get(subject) if subject else None
        if into is None or into is n:
            out.append(n)
            continue
        if into.pos is None and n.pos is None:
            for c in list(n.children):
                into.adopt(c)
        elif into.pos is None:
            into.adopt(n)
        elif n.pos is not None and reply and not _subject_of(into, info)[1]:
            into.adopt(n)
        else:   # neither is the other's reply: both under a new dummy
            dummy = _Node()
            k = out.index(into) if into in out else None
            dummy.adopt(into)
            dummy.adopt(n)
            table[subject] = dummy
            if k is not None:
                out[k] = dummy
            else:
                roots[roots.index(into)] = dummy
    return [n for n in out if n.parent is None]


def _date(nodes: list[_Node], info) -> None:
    """(6): siblings by sent date; a dummy dates from its first child."""
    for n in nodes:
        _date(n.children, info)
        n.date = info[n.pos]["date"] if n.pos is not None else (n.children[0].date if n.children else 0.0)
    nodes.sort(key=_sort_key)


def run_thread(store, mb: Mailbox, algorithm: str, found: list[int]) -> list[_Node]:
    """Blocking: the threads of the messages found, in order."""
    if not found:
        return []
    info = _info(store, mb, found, algorithm == "REFERENCES")
    if algorithm == "ORDEREDSUBJECT":
        return _ordered_subject(info, found)
    return _references_threads(info, found)


def _render(n: _Node, number) -> str:
    kids = n.children
    if n.pos is None:
        return "".join(f"({_render(k, number)})" for k in kids)
    head = str(number(n.pos))
    if not kids:
        return head
    if len(kids) == 1:
        return f"{head} {_render(kids[0], number)}"
    return head + " " + "".join(f"({_render(k, number)})" for k in kids)


def response(mb: Mailbox, roots: list[_Node], uid: bool) -> bytes:
    def number(i: int) -> int:
        return mb.uids[i] if uid else i + 1

    return ("* THREAD " + "".join(f"({_render(r, number)})" for r in roots)).rstrip().encode() + b"\r\n"
