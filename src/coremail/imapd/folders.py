"""Mailbox-level commands: SELECT/EXAMINE, CREATE, DELETE, RENAME,
(UN)SUBSCRIBE, LIST/LSUB (with LIST-EXTENDED, SPECIAL-USE, CHILDREN and
LIST-STATUS), STATUS, APPEND, NAMESPACE and QUOTA (RFC 9208).

The hierarchy separator is "/". Every handler takes the session and the
parsed command, does its blocking store calls in a thread, writes untagged
responses and returns the tagged OK text (or raises responses.No/Bad).
"""
from __future__ import annotations

import re

from ..services.mailboxes import SEP, MailboxError, NewMessage, folder_name
from ..store.interfaces import NotFound
from .mailbox import Mailbox
from .parser import SequenceSet, format_mailbox
from .responses import AUTH, SELECTED, No

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
    s.mailbox = None
    s.state = AUTH
    folder = await s.run(s.store.get_folder, s.user.id, args.mailbox)
    if folder is None:
        raise No(f"No mailbox {args.mailbox[:200]}", "NONEXISTENT")
    mb = await s.run(Mailbox.load, s.store, folder, readonly)
    if args.condstore or args.qresync is not None:
        s.enable_condstore()
    n = len(mb)
    lines = [b"* FLAGS " + mb.flag_names() + b"\r\n",
             b"* OK [PERMANENTFLAGS " + (b"()" if readonly else mb.permanent_flags()) + b"] Flags allowed\r\n",
             b"* %d EXISTS\r\n" % n, b"* 0 RECENT\r\n"]
    unseen = mb.first_unseen()
    if unseen:
        lines.append(b"* OK [UNSEEN %d] First unseen message\r\n" % unseen)
    lines += [b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % mb.uidvalidity,
              b"* OK [UIDNEXT %d] Predicted next UID\r\n" % mb.uidnext,
              b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % mb.highestmodseq]
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
    name = _name(cmd.args.mailbox)
    try:
        await s.run(s.store.set_subscribed, s.user.id, name, cmd.name == "SUBSCRIBE")
    except NotFound:
        raise No(f"No mailbox {name[:200]}", "NONEXISTENT") from None
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


async def list_(s, cmd) -> str:
    a = cmd.args
    lsub = cmd.name == "LSUB"
    if a.patterns == ("",):
        s.send(b'* %s (\\Noselect) "/" ""\r\n' % cmd.name.encode())
        return f"OK {cmd.name} completed"
    folders = await s.run(s.store.list_folders, s.user.id)
    by_name = {f.name: f for f in folders}
    names = set(by_name)
    for n in list(names):  # parents that do not exist but have children
        parts = n.split(SEP)
        for d in range(1, len(parts)):
            names.add(SEP.join(parts[:d]))
    has_children = {n.rpartition(SEP)[0] for n in names if SEP in n}
    subscribed_only = lsub or "SUBSCRIBED" in a.selection
    special_only = "SPECIAL-USE" in a.selection
    show_sub = lsub or "SUBSCRIBED" in a.selection or "SUBSCRIBED" in a.return_opts
    rxs = [_pattern(a.reference + p) for p in a.patterns]
    status_for = []
    lines = []
    for name in sorted(names, key=lambda n: (n != "INBOX", n)):
        if not any(_matches(rx, name) for rx in rxs):
            continue
        f = by_name.get(name)
        if subscribed_only and (f is None or not f.subscribed):
            continue
        if special_only and (f is None or not f.special_use):
            continue
        attrs = []
        if f is None:
            attrs.append("\\NonExistent" if a.extended else "\\Noselect")
        if not lsub:
            attrs.append("\\HasChildren" if name in has_children else "\\HasNoChildren")
        if show_sub and f is not None and f.subscribed and not lsub:
            attrs.append("\\Subscribed")
        if f is not None and f.special_use and not lsub:
            attrs.append(f.special_use)
        lines.append(b'* %s (%s) "/" %s\r\n' % (cmd.name.encode(), " ".join(attrs).encode(), format_mailbox(name)))
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
    values = {"MESSAGES": f.messages, "RECENT": 0, "UIDNEXT": f.uidnext, "UIDVALIDITY": f.uidvalidity,
              "UNSEEN": f.unseen, "SIZE": f.size, "HIGHESTMODSEQ": f.highestmodseq,
              "APPENDLIMIT": int(s.svc.settings.limits.max_message_size)}
    if "HIGHESTMODSEQ" in items:
        s.enable_condstore()
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
    messages = [NewMessage(m.message, frozenset(m.flags),
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

