"""IMAP4rev1 client-command grammar: one framed command in, a typed Command out.

Owns RFC 3501's command syntax plus LITERAL+, CONDSTORE/QRESYNC modifiers,
ESEARCH/SEARCHRES, LIST-EXTENDED, SPECIAL-USE and the cheap parts of RFC 9051.
Our own because no maintained Python library parses the client side
incrementally for an asyncio server: imaplib is a client, and the server-side
parsers around are tied to their frameworks. Framing is in framing.py, value
types and reply quoting in values.py, the token rules in tokens.py, the SEARCH
and FETCH grammars in search_grammar.py and fetch_grammar.py; the public names
of all of them are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import re

from coremail.imapd.fetch_grammar import FetchGrammar
from coremail.imapd.framing import (
    CONTINUATION, CommandFramer, ContinuationNeeded, FramedCommand, FramingError, RawLine,
)  # fmt: skip
from coremail.imapd.search_grammar import MAX_DEPTH, SearchGrammar  # noqa: F401  (MAX_DEPTH re-exported)
from coremail.imapd.tokens import MAX_MODSEQ, ParseError  # noqa: F401  (MAX_MODSEQ re-exported)
from coremail.imapd.values import (  # noqa: F401  (re-exported: the parser's public surface)
    MAX_NUMBER, Append, AppendMessage, Authenticate, Command, Copy, Create, Enable, Expunge, Fetch,
    FetchAtt, GetQuota, Id, List, Login, MailboxArgs, Qresync, Rename, Search, SearchKey, Section,
    Select, SequenceSet, Sort, Status, Store, Thread, decode_mailbox, encode_mailbox, format_flags, format_mailbox,
    imap_date, nstring, quote_astring, quote_string,
)  # fmt: skip

__all__ = [
    "CONTINUATION", "Append", "AppendMessage", "Authenticate", "Command", "CommandFramer", "ContinuationNeeded",
    "Copy", "Create", "Enable", "Expunge", "Fetch", "FetchAtt", "FramedCommand", "FramingError",
    "GetQuota", "Id", "List", "Login", "MailboxArgs", "ParseError", "Qresync", "RawLine", "Rename",
    "Search", "SearchKey", "Section", "Select", "SequenceSet", "Sort", "Status", "Store", "Thread",
    "decode_mailbox", "encode_mailbox", "format_flags", "format_mailbox", "imap_date", "nstring",
    "parse_command", "quote_astring", "quote_string",
]  # fmt: skip

_TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_STORE_ITEM = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.I)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}|=")
_STATUS_ITEMS = frozenset(
    "MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ APPENDLIMIT MAILBOXID".split()
)
_LIST_SELECT = frozenset("SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE".split())
_LIST_RETURN = frozenset("SUBSCRIBED CHILDREN SPECIAL-USE STATUS MYRIGHTS".split())
_UID_COMMANDS = frozenset("COPY MOVE FETCH SEARCH STORE EXPUNGE SORT THREAD".split())
_NO_ARGS = frozenset("CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE IDLE UNSELECT NAMESPACE".split())


def parse_command(raw: bytes, *, utf8: bool = False) -> Command:
    """Parse one framed command (literals inline, as CommandFramer gives it).

    ``utf8``: the client enabled UTF8=ACCEPT, so mailbox names are plain UTF-8.
    ``raw`` has no final CRLF (a literal may end it). Raises ParseError and
    nothing else.
    """
    return _Parser(raw, utf8).command()


class _Parser(SearchGrammar, FetchGrammar):
    __slots__ = ()

    # --- commands ------------------------------------------------------

    def command(self) -> Command:
        m = _TAG.match(self.b)
        if m is None:
            raise ParseError(None, "Missing or invalid command tag")
        self.tag = m.group().decode("ascii")
        self.i = m.end()
        self.sp("command name")
        name = self.word("command name")
        if name == "UID":
            self.uid = True
            self.sp("UID command")
            name = self.word("UID command")
            if name not in _UID_COMMANDS:
                raise self.fail(f"UID {name[:20]} is not a command")
        if name in _NO_ARGS:
            args = None
        elif name == "EXPUNGE":
            args = None
            if self.uid:
                self.sp("UID set")
                args = Expunge(self.seqset())
        else:
            handler = _HANDLERS.get(name)
            if handler is None:
                raise self.fail(f"Unknown command {name[:20]}")
            args = handler(self)
        if self.i != len(self.b):
            raise self.fail(f"Unexpected data after the {name} command")
        return Command(self.tag, name, args, self.uid)

    def cmd_authenticate(self) -> Authenticate:
        self.sp("SASL mechanism")
        mech = self.word("SASL mechanism")
        if self.peek() != 32:
            return Authenticate(mech)
        self.i += 1
        raw = self.match(_BASE64, "initial response")
        try:
            data = b"" if raw == b"=" else base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise self.fail("Initial response is not valid base64") from None
        return Authenticate(mech, data)

    def cmd_login(self) -> Login:
        self.sp("user name")
        user = self.text(self.astring("user name"), "User name")
        self.sp("password")
        return Login(user, self.text(self.astring("password"), "Password"))

    def cmd_select(self) -> Select:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        condstore, qresync = False, None
        if self.peek() == 32:
            self.i += 1
            for param in self.paren_list(self.select_param, "SELECT parameters"):
                if param == "CONDSTORE":
                    condstore = True
                else:
                    qresync = param
        return Select(mailbox, condstore, qresync)

    def select_param(self) -> str | Qresync:
        word = self.word("SELECT parameter")
        if word == "CONDSTORE":
            return word
        if word != "QRESYNC":
            raise self.fail(f"Unknown SELECT parameter {word[:20]}")
        self.sp("QRESYNC parameters")
        self.expect(b"(", "QRESYNC parameters")
        uidvalidity = self.number("UIDVALIDITY", 1)
        self.sp("mod-sequence")
        modseq = self.modseq("mod-sequence")
        known, seq_match = None, None
        if self.peek() == 32:
            self.i += 1
            if self.peek() != 40:
                known = self.seqset()
                if self.peek() == 32:
                    self.i += 1
                    if self.peek() != 40:
                        raise self.missing("sequence match data")
            if self.peek() == 40:
                self.i += 1
                seqs = self.seqset()
                self.sp("UID set")
                seq_match = (seqs, self.seqset())
                self.expect(b")", "closing parenthesis of sequence match data")
        self.expect(b")", "closing parenthesis of QRESYNC parameters")
        return Qresync(uidvalidity, modseq, known, seq_match)

    def cmd_create(self) -> Create:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        use: tuple[str, ...] = ()
        if self.peek() == 32:
            self.i += 1
            self.expect(b"(", "CREATE parameters")
            if self.word("CREATE parameter") != "USE":
                raise self.fail("Only the USE parameter is supported by CREATE")
            self.sp("special-use attributes")
            use = self.paren_list(self.flag, "special-use attributes", empty_ok=False)
            self.expect(b")", "closing parenthesis of CREATE parameters")
        return Create(mailbox, use)

    def cmd_mailbox(self) -> MailboxArgs:
        self.sp("mailbox name")
        return MailboxArgs(self.mailbox())

    def cmd_getquota(self) -> GetQuota:
        self.sp("quota root")
        return GetQuota(self.text(self.astring("quota root"), "Quota root"))

    def cmd_rename(self) -> Rename:
        self.sp("mailbox name")
        old = self.mailbox()
        self.sp("new mailbox name")
        return Rename(old, self.mailbox("new mailbox name"))

    def cmd_list(self) -> List:
        self.sp("reference name")
        selection: tuple[str, ...] = ()
        extended = False
        if self.peek() == 40:
            selection = self.paren_list(lambda: self.option(_LIST_SELECT, "selection option"), "selection options")
            if "RECURSIVEMATCH" in selection and not set(selection) - {"RECURSIVEMATCH", "REMOTE"}:
                raise self.fail("RECURSIVEMATCH needs another selection option (RFC 5258)")
            extended = True
            self.sp("reference name")
        reference = self.mailbox("reference name", inbox=False)
        self.sp("mailbox pattern")
        if self.peek() == 40:
            patterns = self.paren_list(self.list_mailbox, "patterns", empty_ok=False)
            extended = True
        else:
            patterns = (self.list_mailbox(),)
        returns: tuple[str, ...] = ()
        status: list[str] = []

        def return_option() -> str:
            opt = self.option(_LIST_RETURN, "return option")
            if opt == "STATUS":
                self.sp("STATUS items")
                status.extend(self.status_items())
            return opt

        if self.peek() == 32:
            self.i += 1
            if self.word("RETURN") != "RETURN":
                raise self.fail("Expected RETURN after the LIST patterns")
            self.sp("return options")
            returns = self.paren_list(return_option, "return options")
            extended = True
        return List(reference, patterns, selection, returns, tuple(status), extended)

    def cmd_lsub(self) -> List:
        self.sp("reference name")
        reference = self.mailbox("reference name", inbox=False)
        self.sp("mailbox pattern")
        return List(reference, (self.list_mailbox(),))

    def status_items(self) -> tuple[str, ...]:
        return self.paren_list(lambda: self.option(_STATUS_ITEMS, "status item"), "status items", empty_ok=False)

    def cmd_status(self) -> Status:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        self.sp("status items")
        return Status(mailbox, self.status_items())

    def cmd_append(self) -> Append:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        messages = []
        while True:
            self.sp("message literal")
            flags: tuple[str, ...] = ()
            when = None
            if self.peek() == 40:
                flags = self.flag_list()
                self.sp("message literal")
            if self.peek() == 34:
                when = self.date_time()
                self.sp("message literal")
            binary = self.peek() == 126
            if self.peek() not in (123, 126):
                raise self.missing("message literal")
            messages.append(AppendMessage(self.literal("message", binary=True), flags, when, binary))
            if self.peek() != 32:
                return Append(mailbox, tuple(messages))

    def cmd_store(self) -> Store:
        self.sp("sequence set")
        seqset = self.seqset()
        self.sp("STORE item")
        unchanged = None
        if self.peek() == 40:
            self.i += 1
            if self.word("STORE modifier") != "UNCHANGEDSINCE":
                raise self.fail("Only UNCHANGEDSINCE is a STORE modifier")
            self.sp("mod-sequence")
            unchanged = self.modseq("mod-sequence", 0)
            self.expect(b")", "closing parenthesis of STORE modifiers")
            self.sp("STORE item")
        m = _STORE_ITEM.match(self.b, self.i)
        if m is None:
            raise self.missing("STORE item (FLAGS, +FLAGS or -FLAGS)")
        self.i = m.end()
        self.sp("flags")
        if self.peek() == 40:
            flags = self.flag_list()
        else:
            flags = [self.flag()]
            while self.peek() == 32:
                self.i += 1
                flags.append(self.flag())
        return Store(seqset, m.group(1).decode(), bool(m.group(2)), tuple(flags), unchanged)

    def cmd_copy(self) -> Copy:
        self.sp("sequence set")
        seqset = self.seqset()
        self.sp("mailbox name")
        return Copy(seqset, self.mailbox())

    def cmd_id(self) -> Id:
        self.sp("ID parameters")
        if self.peek_word() == "NIL":
            self.i += 3
            return Id(None)

        def pair() -> tuple[str, str | None]:
            key = self.string("ID field").decode("utf-8", "replace")
            self.sp("ID value")
            value = self.nstring("ID value")
            return key, None if value is None else value.decode("utf-8", "replace")

        return Id(self.paren_list(pair, "ID parameters"))

    def cmd_enable(self) -> Enable:
        caps = []
        while True:
            self.sp("capability")
            caps.append(self.word("capability"))
            if self.peek() != 32:
                return Enable(tuple(caps))


_HANDLERS = {
    "AUTHENTICATE": _Parser.cmd_authenticate, "LOGIN": _Parser.cmd_login,
    "SELECT": _Parser.cmd_select, "EXAMINE": _Parser.cmd_select, "CREATE": _Parser.cmd_create,
    "DELETE": _Parser.cmd_mailbox, "SUBSCRIBE": _Parser.cmd_mailbox, "UNSUBSCRIBE": _Parser.cmd_mailbox,
    "GETQUOTAROOT": _Parser.cmd_mailbox, "GETQUOTA": _Parser.cmd_getquota, "RENAME": _Parser.cmd_rename,
    "LIST": _Parser.cmd_list, "LSUB": _Parser.cmd_lsub, "STATUS": _Parser.cmd_status, "APPEND": _Parser.cmd_append,
    "SEARCH": _Parser.cmd_search, "SORT": _Parser.cmd_sort, "THREAD": _Parser.cmd_thread,
    "FETCH": _Parser.cmd_fetch, "STORE": _Parser.cmd_store,
    "COPY": _Parser.cmd_copy, "MOVE": _Parser.cmd_copy, "ID": _Parser.cmd_id, "ENABLE": _Parser.cmd_enable,
}  # fmt: skip
