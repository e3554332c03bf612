"""FETCH and the message data it returns (RFC 3501 6.4.5 and 7.4.2).

Flags, UIDs, sizes, dates and modseqs come from the in-memory mailbox;
ENVELOPE and BODYSTRUCTURE from the summary stored at delivery (mail/mime.py),
never from a re-parse; message octets from the store's blobs by id, small ones
read inline, big ones streamed in chunks from a thread so the loop never waits
on the disk for long. BODY.PEEK leaves \\Seen alone; BODY[] sets it.
A FETCH that retrieves whole messages (BODY[], BODY.PEEK[], RFC822, BINARY[])
logs one `imap.fetch` line with their qids= (for mail that came by SMTP the
blob id is the queue id), so one grep follows a message from the SMTP 250 to
its reader; one line per command (per 200 messages), since a line per
message costs as much as sending a small one.
A message whose bytes are gone (expunged and removed by another session) gets
no FETCH response, and the command a tagged NO [EXPUNGEISSUED] (RFC 2180 4.1.2).
"""
from __future__ import annotations

from datetime import datetime, timezone

from ..mail.mime import decoded_body, render_bodystructure, render_envelope, section_bytes, summarize
from ..store.interfaces import BlobMissing
from .parser import Fetch, FetchAtt, imap_date
from .responses import No

INLINE_MAX = 256 * 1024
CHUNK = 256 * 1024
_META_ITEMS = frozenset(("ENVELOPE", "BODYSTRUCTURE", "BODY"))
_RAW_ITEMS = frozenset(("RFC822", "RFC822.HEADER", "RFC822.TEXT", "BINARY", "BINARY.SIZE"))
_UNSUPPORTED = frozenset(("EMAILID", "THREADID", "SAVEDATE"))


class FetchRefused(Exception):
    """A FETCH that must be answered with a tagged BAD (and nothing else)."""


def _needs(att: FetchAtt) -> tuple[bool, bool]:
    """(needs the summary, needs the octets) for one item."""
    if att.name in ("BODY", "BINARY", "BINARY.SIZE") and att.section is not None:
        whole = att.name == "BODY" and not att.section.part and att.section.text is None
        return not whole, True
    if att.name in _META_ITEMS:
        return True, False
    if att.name in ("RFC822.HEADER", "RFC822.TEXT"):
        return True, True
    return False, att.name == "RFC822"


def _whole(att: FetchAtt) -> bool:
    """Does this item retrieve the whole message?"""
    if att.name == "RFC822":
        return True
    sec = att.section
    return (att.name in ("BODY", "BINARY") and sec is not None and not sec.part and sec.text is None
            and att.partial is None)


def _sets_seen(att: FetchAtt) -> bool:
    if att.name in ("RFC822", "RFC822.TEXT"):
        return True
    return att.name in ("BODY", "BINARY") and att.section is not None and not att.peek


def _literal(data: bytes) -> list:
    return [b"{%d}\r\n" % len(data), data]


def _partial(att: FetchAtt, data: bytes) -> bytes:
    if att.partial is None:
        return data
    origin, length = att.partial
    return data[origin:origin + length]


async def fetch(s, tag: str, args: Fetch, uid: bool, earlier: bytes = b"") -> None:
    """earlier: a `* VANISHED (EARLIER)` line to send before any FETCH response."""
    mb = s.mailbox
    positions = mb.resolve(args.seqset, uid)
    if positions is None:
        raise FetchRefused(f"No such message (the mailbox has {len(mb)})")
    items = list(args.items)
    for att in items:
        if att.name in _UNSUPPORTED:
            raise FetchRefused(f"FETCH {att.name} is not supported")
    names = {a.name for a in items}
    if (uid or s.qresync) and "UID" not in names:   # RFC 7162 3.2.4: always the UID with QRESYNC
        items.insert(0, FetchAtt("UID"))
    if earlier:
        s.send(earlier)
    condstore = s.condstore or args.changedsince is not None or "MODSEQ" in names
    if args.changedsince is not None:
        s.enable_condstore()
        positions = [i for i in positions if mb.modseqs[i] > args.changedsince]
        if "MODSEQ" not in names:
            items.append(FetchAtt("MODSEQ"))
    elif "MODSEQ" in names:
        s.enable_condstore()
    names = {a.name for a in items}
    if s.condstore and ("FLAGS" in names or any(_sets_seen(a) for a in items)):
        # RFC 7162 3.1: once CONDSTORE is on, FETCH responses carrying flags
        # also carry the UID and the mod-sequence
        if "UID" not in names:
            items.insert(0, FetchAtt("UID"))
        if "MODSEQ" not in names:
            items.append(FetchAtt("MODSEQ"))
    need_meta = need_raw = False
    for att in items:
        m, r = _needs(att)
        need_meta |= m
        need_raw |= r
    # \Seen first, in one store call, so the responses can carry the new flags
    seen_changed: set[int] = set()
    if not mb.readonly and any(_sets_seen(a) for a in items):
        todo = [mb.uids[i] for i in positions if "\\Seen" not in mb.flags[i]]
        if todo:
            changed = await s.run(s.store.set_flags, mb.folder_id, todo, frozenset({"\\Seen"}), "add")
            for msg in changed:
                mb.set_flags(msg.uid, msg.flags, msg.modseq)
                seen_changed.add(msg.uid)
            if "FLAGS" not in names:
                items.append(FetchAtt("FLAGS"))  # only rendered for the changed ones below
    flags_asked = "FLAGS" in names
    retrieves = any(_whole(a) for a in items)
    gone: list[Exception] = []
    fetched: list[str] = []
    for start in range(0, len(positions), 200):
        batch = positions[start:start + 200]
        metas: dict[int, dict | None] = {}
        if need_meta:
            uids = [mb.uids[i] for i in batch]
            for msg in await s.run(s.store.get_messages, mb.folder_id, uids):
                metas[msg.uid] = msg.meta
        for i in batch:
            if i >= len(mb.uids):
                continue
            u = mb.uids[i]
            err = await _one(s, mb, i, u, items, metas.get(u), need_meta, need_raw,
                             flags_asked or u in seen_changed, condstore)
            if err is not None:
                s.log.error("imap.blob_missing", sid=s.sid, user=s.user.address, folder=mb.name, uid=u,
                            qid=mb.blobs[i], error=str(err))
                gone.append(err)
            elif retrieves:
                fetched.append(mb.blobs[i])
        if fetched:
            s.log.info("imap.fetch", sid=s.sid, user=s.user.address, folder=mb.name, count=len(fetched),
                       qids=",".join(fetched))
            fetched.clear()
    if gone:
        if all(isinstance(e, BlobMissing) for e in gone):
            raise No("Some of the messages asked for were expunged meanwhile; the others were sent",
                     "EXPUNGEISSUED")
        raise No("Some of the messages asked for could not be read; the others were sent", "SERVERBUG")


async def _one(s, mb, i: int, u: int, items, meta, need_meta: bool, need_raw: bool, want_flags: bool,
               condstore: bool) -> Exception | None:
    """Send one message's FETCH response; the error instead, and nothing sent,
    when its bytes cannot be had."""
    raw = None
    blob = None  # the open blob of a streamed message
    size = mb.sizes[i]
    blobs, blob_id = s.store.blobs, mb.blobs[i]
    whole_only = need_raw and not need_meta and all(
        a.name not in _RAW_ITEMS or a.name == "RFC822" for a in items) and all(
        a.partial is None for a in items if a.section is not None)
    stream = whole_only and size > INLINE_MAX
    try:
        if stream:
            # opened before a byte of the response goes out: a blob found gone
            # then costs this message's response, not the session
            blob = await s.run(blobs.open, blob_id)
        elif need_raw:
            raw = blobs.read(blob_id) if size <= INLINE_MAX else await s.run(blobs.read, blob_id)
        if need_meta and meta is None:
            if raw is None:
                raw = await s.run(blobs.read, blob_id)
            meta = await s.run(summarize, raw)
    except (BlobMissing, OSError) as e:
        return e
    try:
        await _send(s, mb, i, u, items, meta, raw, blob, size, want_flags)
    finally:
        if blob is not None:
            blob.close()
    return None


async def _send(s, mb, i: int, u: int, items, meta, raw, blob, size: int, want_flags: bool) -> None:
    stream = blob is not None
    out: list = [b"* %d FETCH (" % (i + 1)]
    first = True
    for att in items:
        name = att.name
        if name == "FLAGS" and not want_flags:
            continue
        piece: list
        if name == "UID":
            piece = [b"UID %d" % u]
        elif name == "FLAGS":
            piece = [b"FLAGS " + mb.flags_out(i)]
        elif name == "INTERNALDATE":
            piece = [b"INTERNALDATE " + imap_date(datetime.fromtimestamp(mb.dates[i], timezone.utc))]
        elif name == "RFC822.SIZE":
            piece = [b"RFC822.SIZE %d" % size]
        elif name == "MODSEQ":
            piece = [b"MODSEQ (%d)" % mb.modseqs[i]]
        elif name == "ENVELOPE":
            piece = [b"ENVELOPE " + render_envelope(meta["envelope"])]
        elif name == "BODYSTRUCTURE":
            piece = [b"BODYSTRUCTURE " + render_bodystructure(meta, True)]
        elif name == "BODY" and att.section is None:
            piece = [b"BODY " + render_bodystructure(meta, False)]
        elif name == "RFC822":
            piece = [b"RFC822 "] + (_literal(raw) if not stream else [b"{%d}\r\n" % size, blob])
        elif name == "RFC822.HEADER":
            piece = [b"RFC822.HEADER "] + _literal(section_bytes(raw, meta, "HEADER") or b"")
        elif name == "RFC822.TEXT":
            piece = [b"RFC822.TEXT "] + _literal(section_bytes(raw, meta, "TEXT") or b"")
        elif name == "BODY":
            sec = att.section
            if stream:
                piece = [b"BODY[] {%d}\r\n" % size, blob]
            else:
                whole = not sec.part and sec.text is None
                data = raw if whole else section_bytes(raw, meta, sec)
                data = _partial(att, data or b"")
                piece = [att.response_name().encode()] + [b" "] + _literal(data)
        elif name == "BINARY.SIZE":
            data = decoded_body(raw, meta, att.section.part) if att.section.part else raw
            piece = [b"BINARY.SIZE[%s] %d" % (att.section.spec().encode(), len(data or b""))]
        elif name == "BINARY":
            data = decoded_body(raw, meta, att.section.part) if att.section.part else raw
            if data is None:
                data = b""
            data = _partial(att, data)
            lit = b"~{%d}\r\n" % len(data) if b"\x00" in data else b"{%d}\r\n" % len(data)
            piece = [att.response_name().encode(), b" ", lit, data]
        else:
            continue
        if not first:
            out.append(b" ")
        first = False
        out.extend(piece)
    out.append(b")\r\n")
    for chunk in out:
        if isinstance(chunk, (bytes, bytearray)):
            s.send(chunk)
        else:
            await _stream(s, chunk)
    await s.maybe_drain()


async def _stream(s, f) -> None:
    """Send a big blob from its open file in chunks read in a thread,
    honouring write back-pressure."""
    while True:
        chunk = await s.run(f.read, CHUNK)
        if not chunk:
            break
        s.send(chunk)
        await s.drain()
