"""Commands on the selected mailbox: FETCH, STORE, SEARCH, COPY, MOVE,
EXPUNGE (and UID EXPUNGE), CLOSE and UNSELECT.

They work on positions in the session's Mailbox (mailbox.py), call the store
in a thread, keep the in-memory state in step with what they changed, and
send the untagged responses RFC 3501, UIDPLUS, MOVE and CONDSTORE ask for.
"""
from __future__ import annotations

from ..services.mailboxes import MailboxError
from . import fetch as fetch_mod
from . import qresync
from . import search as search_mod
from . import sort as sort_mod
from . import threads as threads_mod
from .parser import SequenceSet
from .responses import AUTH, Bad, No


def _positions(s, seqset, uid: bool) -> list[int]:
    if seqset.saved:
        raise Bad("The saved search result ($) is not supported")
    got = s.mailbox.resolve(seqset, uid)
    if got is None:
        raise Bad(f"No such message (the mailbox has {len(s.mailbox)})")
    return got


def _writable(s) -> None:
    if s.mailbox.readonly:
        raise No("The mailbox is read-only (EXAMINE)", "READ-ONLY")


async def fetch(s, cmd) -> str:
    a = cmd.args
    if a.seqset.saved:
        raise Bad("The saved search result ($) is not supported")
    earlier = b""
    if a.vanished:   # UID FETCH ... (CHANGEDSINCE n VANISHED), RFC 7162 3.2.6
        if not s.qresync:
            raise Bad("The VANISHED modifier needs ENABLE QRESYNC first")
        earlier = await s.run(qresync.vanished_earlier, s.store, s.mailbox, a.changedsince, a.seqset)
    try:
        await fetch_mod.fetch(s, cmd.tag, a, cmd.uid, earlier)
    except fetch_mod.FetchRefused as e:
        raise Bad(str(e)) from None  # the one tagged reply (RFC 3501 2.2.2)
    return f"OK {'UID ' if cmd.uid else ''}FETCH completed"


async def store(s, cmd) -> str:
    _writable(s)
    a = cmd.args
    mb = s.mailbox
    positions = _positions(s, a.seqset, cmd.uid)
    flags = frozenset(f for f in a.flags if f != "\\Recent")
    mode = {"": "set", "+": "add", "-": "remove"}[a.mode]
    if a.unchangedsince is not None:
        s.enable_condstore()
    uids = [mb.uids[i] for i in positions]
    modified = []
    if a.unchangedsince is not None:
        modified = [u for i, u in zip(positions, uids) if mb.modseqs[i] > a.unchangedsince]
    changed = await s.run(lambda: s.svc.mailboxes.set_flags(
        mb.folder_id, uids, flags, mode, unchanged_since=a.unchangedsince)) if uids else []
    keywords = set(mb.keywords)
    touched = set()
    for msg in changed:
        if mb.set_flags(msg.uid, msg.flags, msg.modseq) >= 0:
            touched.add(msg.uid)
    condstore = s.condstore
    out = mb.flags_update(keywords)  # a new keyword: FLAGS first (RFC 3501 7.2.6)
    for i, u in zip(positions, uids):
        if i >= len(mb.uids) or mb.uids[i] != u:
            continue
        if a.silent and not (condstore and u in touched):
            continue
        if a.unchangedsince is not None and u in modified:
            continue
        parts = [b"UID %d" % u] if cmd.uid or condstore else []  # RFC 7162 3.1: UID too
        if not a.silent:
            parts.append(b"FLAGS " + mb.flags_out(i))
        if condstore:
            parts.append(b"MODSEQ (%d)" % mb.modseqs[i])
        out.append(b"* %d FETCH (%s)\r\n" % (i + 1, b" ".join(parts)))
    s.send(b"".join(out))
    if modified:
        return f"OK [MODIFIED {SequenceSet.from_ints(modified)}] Conditional STORE failed for some"
    return f"OK {'UID ' if cmd.uid else ''}STORE completed"


async def search(s, cmd) -> str:
    a = cmd.args
    if search_mod.has_saved(a.key):
        raise Bad("The saved search result ($) is not supported")
    _, _, uses_modseq = search_mod.needs(a.key)
    if uses_modseq:
        s.enable_condstore()
    need_meta, _, _ = search_mod.needs(a.key)
    if need_meta:
        found = await s.run(search_mod.run_search, s.store, s.mailbox, a.key)
    else:
        found = search_mod.run_search(s.store, s.mailbox, a.key)
    s.send(search_mod.response(cmd.tag, s.mailbox, found, cmd.uid, a.return_opts, uses_modseq))
    return f"OK {'UID ' if cmd.uid else ''}SEARCH completed"


async def _found(s, key) -> list[int]:
    if search_mod.has_saved(key):
        raise Bad("The saved search result ($) is not supported")
    if search_mod.needs(key)[0]:
        return await s.run(search_mod.run_search, s.store, s.mailbox, key)
    return search_mod.run_search(s.store, s.mailbox, key)


async def sort(s, cmd) -> str:
    a = cmd.args
    found = await _found(s, a.key)
    order = await s.run(sort_mod.run_sort, s.store, s.mailbox, a.keys, found)
    s.send(sort_mod.response(cmd.tag, s.mailbox, order, cmd.uid, a.return_opts))
    return f"OK {'UID ' if cmd.uid else ''}SORT completed"


async def thread(s, cmd) -> str:
    a = cmd.args
    found = await _found(s, a.key)
    tree = await s.run(threads_mod.run_thread, s.store, s.mailbox, a.algorithm, found)
    s.send(threads_mod.response(s.mailbox, tree, cmd.uid))
    return f"OK {'UID ' if cmd.uid else ''}THREAD completed"


async def copy(s, cmd) -> str:
    mb = s.mailbox
    move = cmd.name == "MOVE"
    if move:
        _writable(s)
    positions = _positions(s, cmd.args.seqset, cmd.uid)
    uids = [mb.uids[i] for i in positions]
    try:
        dest, pairs = await s.run(lambda: s.svc.mailboxes.move(
            s.user.id, mb.folder_id, uids, cmd.args.mailbox, copy=not move))
    except MailboxError as e:
        raise No(e.text, e.reason) from None
    if not uids:
        return f"OK {cmd.name} completed (nothing to do)"
    pairs.sort()
    src = SequenceSet.from_ints(p[0] for p in pairs)
    new = SequenceSet.from_ints(p[1] for p in pairs)  # both ascending, so they pair up in order
    code = f"COPYUID {dest.uidvalidity} {src} {new}"
    s.log.info("imap.copy", sid=s.sid, user=s.user.address, move=move, src=mb.name, dest=dest.name,
               count=len(pairs))
    if not move:
        return f"OK [{code}] COPY completed"
    s.send(f"* OK [{code}] Moved\r\n".encode())
    if dest.id != mb.folder_id:
        s.send(b"".join(mb.remove([p[0] for p in pairs], s.qresync)))
    return "OK MOVE completed"


async def expunge(s, cmd) -> str:
    _writable(s)
    mb = s.mailbox
    if cmd.uid:
        positions = _positions(s, cmd.args.seqset, True)
    else:
        positions = range(len(mb))
    uids = [mb.uids[i] for i in positions if "\\Deleted" in mb.flags[i]]
    done = f"{'UID ' if cmd.uid else ''}EXPUNGE completed"
    if uids:
        removed = await s.run(s.store.expunge, mb.folder_id, uids)
        s.send(b"".join(mb.remove(removed, s.qresync)))
        s.log.info("imap.expunge", sid=s.sid, user=s.user.address, folder=mb.name, count=len(removed))
        if removed and s.qresync:
            # RFC 7162 3.2.7: the new HIGHESTMODSEQ in the tagged OK; caught up
            # first, so every change up to it has been told
            await s.sync()
            if s.mailbox is mb:
                return f"OK [HIGHESTMODSEQ {mb.highestmodseq}] {done}"
    return f"OK {done}"


async def close(s, cmd) -> str:
    mb = s.mailbox
    if not mb.readonly:
        uids = [u for u, f in zip(mb.uids, mb.flags) if "\\Deleted" in f]
        if uids:
            await s.run(s.store.expunge, mb.folder_id, uids)  # silently, as RFC 3501 says
    s.mailbox = None
    s.state = AUTH
    return "OK CLOSE completed"


async def unselect(s, cmd) -> str:
    s.mailbox = None
    s.state = AUTH
    return "OK UNSELECT completed"
