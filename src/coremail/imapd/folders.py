"""Mailbox-level commands: SELECT/EXAMINE, CREATE, DELETE, RENAME,
(UN)SUBSCRIBE, LIST/LSUB (with LIST-EXTENDED, SPECIAL-USE, CHILDREN and
LIST-STATUS), STATUS, APPEND, NAMESPACE and QUOTA (RFC 9208).

The hierarchy separator is "/". Every handler takes the session and the
parsed command, does its blocking store calls in a thread, writes untagged
responses and returns the tagged OK text (or raises responses.No/Bad).
"""
from __future__ import annotations

import re

from ..mail.mime import binary_to_base64
from ..services.mailboxes import SEP, MailboxError, NewMessage, folder_name
from . import qresync
from .mailbox import Mailbox
from .parser import SequenceSet, format_mailbox
from .responses import AUTH, SELECTED, Bad, No

_STATUS_ORDER = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
                 "HIGHESTMODSEQ", "APPENDLIMIT")


def _name(raw: str) -> str:
    try:
        return folder_name(raw)
    except MailboxError as e:
        raise _no(e) from None


# ------------------------------------------------------------ SELECT
async def select(s, cmd) -> str:
    args = cmd.args
    readonly = cmd.name == "EXAMINE"
    q = args.qresync
    if q is not None and not s.qresync:
        raise Bad("QRESYNC parameters need ENABLE QRESYNC first")
    if s.mailbox is not None:
        # RFC 7162 3.2.11: what follows is about the new mailbox
        s.send(b"* OK [CLOSED] Previous mailbox closed\r\n")
    s.mailbox = None
    s.state = AUTH
    folder = await s.run(s.store.get_folder, s.user.id, args.mailbox)
    if folder is None:
        raise No(f"No mailbox {args.mailbox[:200]}", "NONEXISTENT")
    mb = await s.run(Mailbox.load, s.store, folder, readonly)
    if args.condstore:
        s.enable_condstore()
    n = len(mb)
    lines = [b"* FLAGS " + mb.flag_names() + b"\r\n",
             b"* OK [PERMANENTFLAGS " + (b"()" if readonly else mb.permanent_flags()) + b"] Flags allowed\r\n",
             b"* %d EXISTS\r\n" % n, b"* %d RECENT\r\n" % len(mb.recent)]
    unseen = mb.first_unseen()
    if unseen:
        lines.append(b"* OK [UNSEEN %d] First unseen message\r\n" % unseen)
    lines += [b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % mb.uidvalidity,
              b"* OK [UIDNEXT %d] Predicted next UID\r\n" % mb.uidnext,
              b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % mb.highestmodseq]
    if q is not None and q.uidvalidity == mb.uidvalidity:   # else: a full resync, as without
        lines += await s.run(qresync.catch_up, s.store, mb, q)
    s.send(b"".join(lines))
    s.mailbox = mb
    s.state = SELECTED
    s.synced = s.loop.time()
    return f"OK [{'READ-ONLY' if readonly else 'READ-WRITE'}] {cmd.name} completed"


# ------------------------------------------------------------ CREATE / DELETE / RENAME
def _no(e: MailboxError) -> No:
    return No(e.text, e.reason)


async def create(s, cmd) -> str:
    use = cmd.args.special_use[0] if cmd.args.special_use else None
    try:
        await s.run(s.svc.mailboxes.create, s.user.id, cmd.args.mailbox, use)
    except MailboxError as e:
        raise _no(e) from None
    return "OK CREATE completed"


async def delete(s, cmd) -> str:
    try:
        name = await s.run(s.svc.mailboxes.delete, s.user.id, cmd.args.mailbox)
    except MailboxError as e:
        raise _no(e) from None
    if s.mailbox is not None and s.mailbox.name == name:
        s.mailbox = None
        s.state = AUTH
    return "OK DELETE completed"


async def rename(s, cmd) -> str:
    try:
        await s.run(s.svc.mailboxes.rename, s.user.id, cmd.args.old, cmd.args.new)
    except MailboxError as e:
        raise _no(e) from None
    return "OK RENAME completed"


async def subscribe(s, cmd) -> str:
    """Subscriptions are names (RFC 3501 6.3.6): SUBSCRIBE wants the folder
    to exist; UNSUBSCRIBE takes any name, a deleted folder's too."""
    name = _name(cmd.args.mailbox)
    on = cmd.name == "SUBSCRIBE"
    if on and await s.run(s.store.get_folder, s.user.id, name) is None:
        raise No(f"No mailbox {name[:200]}", "NONEXISTENT")
    await s.run(s.store.set_subscribed, s.user.id, name, on)
    return f"OK {cmd.name} completed"


# ------------------------------------------------------------ LIST / LSUB
def _pattern(p: str) -> re.Pattern[str]:
    if p[:5].upper() == "INBOX":  # RFC 3501 5.1: INBOX in any case names INBOX
        p = "INBOX" + p[5:]
    out = []
    for ch in p:
        out.append(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch))
    return re.compile("".join(out), re.S)


def _matches(rx: re.Pattern[str], name: str) -> bool:
    if rx.fullmatch(name):
        return True
    # INBOX is case-insensitive (the INBOX prefix of a pattern is folded in _pattern)
    return name == "INBOX" and re.fullmatch(rx.pattern, name, re.S | re.I) is not None


def _ancestors(name: str):
    parts = name.split(SEP)
    for d in range(1, len(parts)):
        yield SEP.join(parts[:d])


def _load_names(store, user_id: int, want_subs: bool):
    return store.list_folders(user_id), set(store.list_subscriptions(user_id)) if want_subs else set()


def _lsub(by_name, subs: set[str], match) -> dict[str, list[str]]:
    """LSUB (RFC 3501 6.3.9): the subscribed names that match; a parent that
    matches where its subscribed child does not ("%") is shown \\Noselect."""
    out: dict[str, list[str]] = {}
    for n in subs:
        if match(n):
            out[n] = [] if n in by_name else ["\\Noselect"]
            continue
        for p in _ancestors(n):
            if p not in subs and match(p):
                out.setdefault(p, ["\\Noselect"])
    return out


async def list_(s, cmd) -> str:
    a = cmd.args
    lsub = cmd.name == "LSUB"
    if a.patterns == ("",):
        s.send(b'* %s (\\Noselect) "/" ""\r\n' % cmd.name.encode())
        return f"OK {cmd.name} completed"
    sel = set(a.selection)
    show_sub = lsub or "SUBSCRIBED" in sel or "SUBSCRIBED" in a.return_opts
    folders, subs = await s.run(_load_names, s.store, s.user.id, show_sub)
    by_name = {f.name: f for f in folders}
    names = set(by_name)
    for n in by_name:  # parents that do not exist but have children
        names.update(_ancestors(n))
    has_children = {n.rpartition(SEP)[0] for n in names if SEP in n}
    rxs = [_pattern(a.reference + p) for p in a.patterns]

    def match(n: str) -> bool:
        return any(_matches(rx, n) for rx in rxs)

    def selected(n: str) -> bool:
        f = by_name.get(n)
        return (("SUBSCRIBED" not in sel or n in subs)
                and ("SPECIAL-USE" not in sel or (f is not None and bool(f.special_use))))

    shown: dict[str, list[str]]
    childinfo: set[str] = set()
    if lsub:
        shown = _lsub(by_name, subs, match)
    else:
        candidates = names | subs if "SUBSCRIBED" in sel else names
        shown = {}
        for n in candidates:
            if not match(n):
                continue
            if selected(n):
                shown[n] = []
            elif "RECURSIVEMATCH" in sel and "SUBSCRIBED" in sel and any(
                    d.startswith(n + SEP) and not match(d) for d in subs if selected(d)):
                # RFC 5258 3.5: a descendant meets the criteria but not the pattern
                shown[n] = []
                childinfo.add(n)
        for n, attrs in shown.items():
            f = by_name.get(n)
            if f is None:
                attrs.append("\\NonExistent" if a.extended else "\\Noselect")
            attrs.append("\\HasChildren" if n in has_children else "\\HasNoChildren")
            if show_sub and n in subs:
                attrs.append("\\Subscribed")
            if f is not None and f.special_use:
                attrs.append(f.special_use)
    status_for = []
    lines = []
    for name in sorted(shown, key=lambda n: (n != "INBOX", n)):
        extra = b' ("CHILDINFO" ("SUBSCRIBED"))' if name in childinfo else b""
        lines.append(b'* %s (%s) "/" %s%s\r\n' % (cmd.name.encode(), " ".join(shown[name]).encode(),
                                                  format_mailbox(name), extra))
        f = by_name.get(name)
        if a.return_status and f is not None:
            status_for.append(f)
            lines.append(b"")  # placeholder: the STATUS line follows its LIST line
    if status_for:
        counted = {f.id: f for f in await s.run(lambda: s.store.list_folders(s.user.id, counts=True))}
        it = iter(status_for)
        for k, line in enumerate(lines):
            if line == b"":
                f = next(it)
                lines[k] = await _status_line(s, counted.get(f.id, f), a.return_status)
    s.send(b"".join(lines))
    return f"OK {cmd.name} completed"


# ------------------------------------------------------------ STATUS
async def _status_line(s, f, items) -> bytes:
    values = {"MESSAGES": f.messages, "UIDNEXT": f.uidnext, "UIDVALIDITY": f.uidvalidity,
              "UNSEEN": f.unseen, "SIZE": f.size, "HIGHESTMODSEQ": f.highestmodseq,
              "APPENDLIMIT": int(s.svc.settings.limits.max_message_size)}
    if "HIGHESTMODSEQ" in items:
        s.enable_condstore()
    if "RECENT" in items:
        uids = await s.run(s.store.message_uids, f.id)
        values["RECENT"] = sum(1 for u in uids if u > f.recent_uid)
    if "DELETED" in items:
        rows = await s.run(s.store.message_index, f.id)
        values["DELETED"] = sum(1 for r in rows if "\\Deleted" in r[1].split())
    out = " ".join(f"{k} {values[k]}" for k in _STATUS_ORDER if k in items and k in values)
    return b"* STATUS %s (%s)\r\n" % (format_mailbox(f.name), out.encode())


async def status(s, cmd) -> str:
    name = _name(cmd.args.mailbox)
    folders = await s.run(lambda: s.store.list_folders(s.user.id, counts=True))
    f = next((x for x in folders if x.name == name), None)
    if f is None:
        raise No(f"No mailbox {name[:200]}", "NONEXISTENT")
    s.send(await _status_line(s, f, cmd.args.items))
    return "OK STATUS completed"


# ------------------------------------------------------------ APPEND
async def append(s, cmd) -> str:
    name = _name(cmd.args.mailbox)
    folder = await s.run(s.store.get_folder, s.user.id, name)
    if folder is None:
        raise No(f"No mailbox {name[:200]}", "TRYCREATE")
    messages = [NewMessage(await s.run(binary_to_base64, m.message) if m.binary else m.message,
                           frozenset(m.flags),
                           m.date_time.timestamp() if m.date_time is not None else None)
                for m in cmd.args.messages]
    try:
        uids = await s.svc.mailboxes.append(s.user, folder, messages)
    except MailboxError as e:
        raise _no(e) from None
    uidset = SequenceSet.from_ints(uids).to_bytes().decode()
    s.log.info("imap.append", sid=s.sid, user=s.user.address, folder=name, uids=uidset)
    return f"OK [APPENDUID {folder.uidvalidity} {uidset}] APPEND completed"


# ------------------------------------------------------------ NAMESPACE / QUOTA
async def namespace(s, cmd) -> str:
    s.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
    return "OK NAMESPACE completed"


async def _quota(s) -> None:
    user = await s.run(s.store.get_user_by_id, s.user.id)
    if user is not None and user.quota:
        used, limit = -(-user.used_bytes // 1024), user.quota // 1024
        s.send(b'* QUOTA "" (STORAGE %d %d)\r\n' % (used, limit))
    else:
        s.send(b'* QUOTA "" ()\r\n')


async def getquotaroot(s, cmd) -> str:
    name = _name(cmd.args.mailbox)
    if await s.run(s.store.get_folder, s.user.id, name) is None:
        raise No(f"No mailbox {name[:200]}", "NONEXISTENT")
    s.send(b'* QUOTAROOT %s ""\r\n' % format_mailbox(name))
    await _quota(s)
    return "OK GETQUOTAROOT completed"


async def getquota(s, cmd) -> str:
    if cmd.args.root != "":
        raise No(f"No quota root {cmd.args.root[:100]!r}; the root is \"\"", "NONEXISTENT")
    await _quota(s)
    return "OK GETQUOTA completed"

