"""IMAP4rev1 client-command grammar: one framed command in, a typed Command out.

Owns RFC 3501's command syntax plus LITERAL+, CONDSTORE/QRESYNC modifiers,
ESEARCH/SEARCHRES, LIST-EXTENDED, SPECIAL-USE and the cheap parts of RFC 9051.
Our own because no maintained Python library parses the client side
incrementally for an asyncio server: imaplib is a client, and the server-side
parsers around are tied to their frameworks. Framing is in framing.py, value
types and reply quoting in values.py; all are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime, timedelta, timezone

from coremail.imapd.framing import (
    CONTINUATION, CommandFramer, ContinuationNeeded, FramedCommand, FramingError, RawLine,
)  # fmt: skip
from coremail.imapd.values import (  # noqa: F401  (re-exported: the parser's public surface)
    MAX_NUMBER, Append, AppendMessage, Authenticate, Command, Copy, Create, Enable, Expunge, Fetch,
    FetchAtt, GetQuota, Id, List, Login, MailboxArgs, Qresync, Rename, Search, SearchKey, Section,
    Select, SequenceSet, Status, Store, decode_mailbox, encode_mailbox, format_flags, format_mailbox,
    imap_date, nstring, quote_astring, quote_string,
)  # fmt: skip

__all__ = [
    "CONTINUATION", "Append", "AppendMessage", "Authenticate", "Command", "CommandFramer", "ContinuationNeeded",
    "Copy", "Create", "Enable", "Expunge", "Fetch", "FetchAtt", "FramedCommand", "FramingError",
    "GetQuota", "Id", "List", "Login", "MailboxArgs", "ParseError", "Qresync", "RawLine", "Rename",
    "Search", "SearchKey", "Section", "Select", "SequenceSet", "Status", "Store",
    "decode_mailbox", "encode_mailbox", "format_flags", "format_mailbox", "imap_date", "nstring",
    "parse_command", "quote_astring", "quote_string",
]  # fmt: skip

MAX_MODSEQ = 2**63 - 1
MAX_DEPTH = 64  # search-key nesting; deeper is an attack, not a query

_TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
_ASTRING = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
_LIST_CHARS = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\\]+')
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_UNESCAPE = re.compile(rb"\\(.)")
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,20})\+?\}\r?\n")
_NUMBER = re.compile(rb"[0-9]+")
_SEQSET = re.compile(rb"[0-9*:,$]+")
_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_TEXT = re.compile(rb"HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME", re.I)
_STORE_ITEM = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.I)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}|=")
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(
    rb'" ?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SYSTEM_FLAGS = {f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")}


class ParseError(Exception):
    """A command that cannot be parsed; the connection stays usable.

    Answer with ``response()``: ``TAG BAD message`` (``* BAD`` when no tag was
    readable), or ``TAG NO [BADCHARSET ...]`` for an unsupported charset.
    """

    def __init__(self, tag: str | None, message: str, *, status: str = "BAD", code: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.message = message
        self.status = status
        self.code = code

    def response(self) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        # a message may quote client text: never let it end the response line early
        text = _CONTROL.sub("?", self.message)
        return f"{self.tag or '*'} {self.status} {code}{text}\r\n".encode("utf-8", "replace")


_SIMPLE_ATTS = frozenset(
    "ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODYSTRUCTURE "
    "UID MODSEQ EMAILID THREADID SAVEDATE".split()
)
_MACROS = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_STATUS_ITEMS = frozenset(
    "MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ APPENDLIMIT MAILBOXID".split()
)
_LIST_SELECT = frozenset("SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE".split())
_LIST_RETURN = frozenset("SUBSCRIBED CHILDREN SPECIAL-USE STATUS MYRIGHTS".split())
_ESEARCH_RETURN = frozenset("MIN MAX ALL COUNT SAVE".split())
_CHARSETS = frozenset(("UTF-8", "US-ASCII"))
_SEARCH_FLAGS = frozenset(
    "ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN".split()
)
_SEARCH_STRINGS = frozenset("BCC BODY CC FROM SUBJECT TEXT TO".split())
_SEARCH_DATES = frozenset("BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE".split())
_SEARCH_NUMBERS = frozenset("LARGER SMALLER OLDER YOUNGER".split())
_SEARCH_WITH_ARGS = _SEARCH_STRINGS | _SEARCH_DATES | _SEARCH_NUMBERS | {
    "UID", "KEYWORD", "UNKEYWORD", "HEADER", "NOT", "OR", "MODSEQ"}  # fmt: skip
_UID_COMMANDS = frozenset("COPY MOVE FETCH SEARCH STORE EXPUNGE".split())
_NO_ARGS = frozenset("CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE IDLE UNSELECT NAMESPACE".split())


def parse_command(raw: bytes, *, utf8: bool = False) -> Command:
    """Parse one framed command (literals inline, as CommandFramer gives it).

    ``utf8``: the client enabled UTF8=ACCEPT, so mailbox names are plain UTF-8.
    ``raw`` has no final CRLF (a literal may end it). Raises ParseError and
    nothing else.
    """
    return _Parser(raw, utf8).command()


class _Parser:
    __slots__ = ("b", "i", "tag", "utf8", "uid")

    def __init__(self, raw: bytes, utf8: bool) -> None:
        self.b = raw
        self.i = 0
        self.tag: str | None = None
        self.utf8 = utf8
        self.uid = False

    # --- primitives ----------------------------------------------------

    def fail(self, message: str) -> ParseError:
        return ParseError(self.tag, message)

    def peek(self) -> int:
        return self.b[self.i] if self.i < len(self.b) else -1

    def missing(self, what: str) -> ParseError:
        if self.i >= len(self.b):
            return self.fail(f"Missing {what}")
        c = self.b[self.i]
        shown = chr(c) if 32 < c < 127 else f"0x{c:02x}"
        return self.fail(f"Invalid {what} at octet {self.i} ({shown})")

    def sp(self, what: str) -> None:
        if self.peek() != 32:
            raise self.missing(what) if self.i >= len(self.b) else self.fail(f"Expected a space before {what}")
        self.i += 1

    def expect(self, ch: bytes, what: str) -> None:
        if self.peek() != ch[0]:
            raise self.missing(what)
        self.i += 1

    def match(self, regex: re.Pattern[bytes], what: str) -> bytes:
        m = regex.match(self.b, self.i)
        if m is None:
            raise self.missing(what)
        self.i = m.end()
        return m.group()

    def word(self, what: str) -> str:
        return self.match(_ATOM, what).decode("ascii").upper()

    def peek_word(self) -> str:
        m = _ATOM.match(self.b, self.i)
        return m.group().decode("ascii").upper() if m else ""

    def number(self, what: str, low: int = 0, high: int = MAX_NUMBER) -> int:
        n = int(self.match(_NUMBER, what))
        if not low <= n <= high:
            raise self.fail(f"{what} out of range ({n})")
        return n

    def quoted(self, what: str) -> bytes:
        m = _QUOTED.match(self.b, self.i)
        if m is None:
            raise self.fail(f"Unterminated or invalid quoted string for {what}")
        self.i = m.end()
        s = m.group(1)
        return _UNESCAPE.sub(rb"\1", s) if b"\\" in s else s

    def literal(self, what: str, binary: bool = False) -> bytes:
        m = _LITERAL.match(self.b, self.i)
        if m is None:
            raise self.fail(f"Invalid literal for {what}")
        if m.group(1) and not binary:
            raise self.fail(f"A literal8 is not allowed for {what}")
        start, n = m.end(), int(m.group(2))
        if start + n > len(self.b):
            raise self.fail(f"Literal for {what} is shorter than announced")
        self.i = start + n
        data = self.b[start : start + n]
        if not binary and b"\x00" in data:
            raise self.fail(f"NUL octet in the literal for {what}")
        return data

    def string(self, what: str) -> bytes:
        c = self.peek()
        if c == 34:
            return self.quoted(what)
        if c == 123:
            return self.literal(what)
        raise self.missing(what)

    def astring(self, what: str) -> bytes:
        c = self.peek()
        if c == 34 or c == 123:
            return self.string(what)
        return self.match(_ASTRING, what)

    def nstring(self, what: str) -> bytes | None:
        if self.peek_word() == "NIL":
            self.i += 3
            return None
        return self.string(what)

    def text(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None

    def name_of(self, raw: bytes, inbox: bool) -> str:
        try:
            name = raw.decode("utf-8") if self.utf8 else decode_mailbox(raw)
        except ValueError as e:
            raise self.fail(f"Invalid mailbox name: {e}") from None
        # INBOX is case-insensitive (RFC 3501 5.1); other names are not
        return "INBOX" if inbox and name.upper() == "INBOX" else name

    def mailbox(self, what: str = "mailbox name", inbox: bool = True) -> str:
        return self.name_of(self.astring(what), inbox)

    def list_mailbox(self) -> str:
        c = self.peek()
        raw = self.string("pattern") if c in (34, 123) else self.match(_LIST_CHARS, "pattern")
        return self.name_of(raw, False)

    def seqset(self) -> SequenceSet:
        raw = self.match(_SEQSET, "sequence set")
        try:
            return SequenceSet.parse(raw)
        except ValueError as e:
            raise self.fail(f"Invalid sequence set: {e}") from None

    def flag(self) -> str:
        if self.peek() == 92:
            self.i += 1
            name = "\\" + self.match(_ATOM, "flag").decode("ascii")
            return _SYSTEM_FLAGS.get(name.upper(), name)
        return self.match(_ATOM, "flag").decode("ascii")

    def paren_list(self, item, what: str, empty_ok: bool = True) -> tuple:
        self.expect(b"(", what)
        out = []
        if self.peek() != 41 or not empty_ok:
            out.append(item())
            while self.peek() == 32:
                self.i += 1
                out.append(item())
        self.expect(b")", f"closing parenthesis of {what}")
        return tuple(out)

    def flag_list(self) -> tuple[str, ...]:
        return self.paren_list(self.flag, "flag list")

    def modseq(self, what: str, low: int = 1) -> int:
        return self.number(what, low, MAX_MODSEQ)

    def date(self) -> date:
        quoted = self.peek() == 34
        self.i += quoted
        m = _DATE.match(self.b, self.i)
        if m is None or m.group(2).upper().decode() not in _MONTHS:
            raise self.missing("date (like 1-Feb-1994)")
        self.i = m.end()
        if quoted:
            self.expect(b'"', "closing quote of the date")
        try:
            return date(int(m.group(3)), _MONTHS[m.group(2).upper().decode()], int(m.group(1)))
        except ValueError:
            raise self.fail("No such date") from None

    def date_time(self) -> datetime:
        m = _DATE_TIME.match(self.b, self.i)
        if m is None or m.group(2).upper().decode() not in _MONTHS:
            raise self.missing('date-time (like "17-Jul-1996 02:44:25 -0700")')
        self.i = m.end()
        day, month, year, hour, minute, second, sign, zh, zm = m.groups()
        offset = int(zh) * 60 + int(zm)
        try:
            tz = timezone(timedelta(minutes=-offset if sign == b"-" else offset))
            month_no = _MONTHS[month.upper().decode()]
            return datetime(int(year), month_no, int(day), int(hour), int(minute), int(second), tzinfo=tz)
        except ValueError:
            raise self.fail("No such date-time") from None

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

    def option(self, known: frozenset[str], what: str) -> str:
        word = self.word(what)
        if word not in known:
            raise self.fail(f"Unknown {what} {word[:20]}")
        return word

    def cmd_list(self) -> List:
        self.sp("reference name")
        selection: tuple[str, ...] = ()
        extended = False
        if self.peek() == 40:
            selection = self.paren_list(lambda: self.option(_LIST_SELECT, "selection option"), "selection options")
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

    def cmd_search(self) -> Search:
        self.sp("search criteria")
        returns = None
        charset = None
        if self.peek_word() == "RETURN":
            self.i += 6
            self.sp("return options")
            returns = self.paren_list(lambda: self.option(_ESEARCH_RETURN, "return option"), "return options")
            self.sp("search criteria")
        if self.peek_word() == "CHARSET":
            self.i += 7
            self.sp("charset")
            charset = self.astring("charset").decode("ascii", "replace").upper()
            if charset not in _CHARSETS:
                raise ParseError(self.tag, f"Charset {charset[:40]} is not supported", status="NO",
                                 code="BADCHARSET (UTF-8 US-ASCII)")  # fmt: skip
            self.sp("search criteria")
        keys = [self.search_key(0)]
        while self.peek() == 32:
            self.i += 1
            keys.append(self.search_key(0))
        return Search(keys[0] if len(keys) == 1 else SearchKey("AND", tuple(keys)), charset, returns)

    def search_string(self) -> str:
        return self.astring("search string").decode("utf-8", "replace")

    def search_key(self, depth: int) -> SearchKey:
        if depth > MAX_DEPTH:
            raise self.fail("Search criteria nested too deeply")
        c = self.peek()
        if c == 40:
            keys = self.paren_list(lambda: self.search_key(depth + 1), "search group", empty_ok=False)
            return keys[0] if len(keys) == 1 else SearchKey("AND", keys)
        if 48 <= c <= 57 or c in (42, 36):
            return SearchKey("SEQ", (self.seqset(),))
        op = self.word("search key")
        if op in _SEARCH_FLAGS:
            return SearchKey(op)
        if op not in _SEARCH_WITH_ARGS:
            raise self.fail(f"Unknown search key {op[:20]}")
        self.sp(f"argument of {op}")
        if op in _SEARCH_STRINGS:
            return SearchKey(op, (self.search_string(),))
        if op in _SEARCH_DATES:
            return SearchKey(op, (self.date(),))
        if op in _SEARCH_NUMBERS:
            return SearchKey(op, (self.number(f"{op} size", 0 if op in ("LARGER", "SMALLER") else 1),))
        if op == "UID":
            return SearchKey(op, (self.seqset(),))
        if op in ("KEYWORD", "UNKEYWORD"):
            return SearchKey(op, (self.flag(),))
        if op == "HEADER":
            field = self.astring("header field name").decode("ascii", "replace")
            self.sp("header value")
            return SearchKey(op, (field, self.search_string()))
        if op == "NOT":
            return SearchKey(op, (self.search_key(depth + 1),))
        if op == "OR":
            first = self.search_key(depth + 1)
            self.sp("second OR criterion")
            return SearchKey(op, (first, self.search_key(depth + 1)))
        entry = kind = None  # MODSEQ
        if self.peek() == 34:
            entry = self.quoted("entry name").decode("ascii", "replace")
            self.sp("entry type")
            kind = self.word("entry type").lower()
            if kind not in ("priv", "shared", "all"):
                raise self.fail("Entry type must be priv, shared or all")
            self.sp("mod-sequence")
        return SearchKey(op, (self.modseq("mod-sequence", 0), entry, kind))

    def cmd_fetch(self) -> Fetch:
        self.sp("sequence set")
        seqset = self.seqset()
        self.sp("FETCH items")
        if self.peek() == 40:
            items = self.paren_list(self.fetch_att, "FETCH items", empty_ok=False)
        elif self.peek_word() in _MACROS:
            items = tuple(FetchAtt(n) for n in _MACROS[self.word("macro")])
        else:
            items = (self.fetch_att(),)
        mods: dict[str, int | None] = {}

        def modifier() -> None:
            mod = self.word("FETCH modifier")
            if mod == "CHANGEDSINCE":
                self.sp("mod-sequence")
                mods[mod] = self.modseq("mod-sequence", 0)
            elif mod == "VANISHED" and self.uid:
                mods[mod] = None
            else:
                raise self.fail(f"Unknown FETCH modifier {mod[:20]}")

        if self.peek() == 32:
            self.i += 1
            self.paren_list(modifier, "FETCH modifiers", empty_ok=False)
            if "VANISHED" in mods and "CHANGEDSINCE" not in mods:
                raise self.fail("VANISHED needs CHANGEDSINCE")
        return Fetch(seqset, items, mods.get("CHANGEDSINCE"), "VANISHED" in mods)

    def fetch_att(self) -> FetchAtt:
        name = self.match(_FETCH_NAME, "FETCH item").decode("ascii").upper()
        bracket = self.peek() == 91
        if name in _SIMPLE_ATTS or (name == "BODY" and not bracket):
            return FetchAtt(name)
        peek = name.endswith(".PEEK")
        base = name[:-5] if peek else name
        if base not in ("BODY", "BINARY", "BINARY.SIZE") or name == "BINARY.SIZE.PEEK":
            raise self.fail(f"Unknown FETCH item {name[:30]}")
        self.expect(b"[", f"section of {name}")
        section = self.section() if base == "BODY" else Section(self.section_part())
        self.expect(b"]", f"end of the {name} section")
        partial = None
        if self.peek() == 60 and base != "BINARY.SIZE":
            self.i += 1
            origin = self.number("partial origin")
            self.expect(b".", "partial length")
            partial = (origin, self.number("partial length", 1))
            self.expect(b">", "end of the partial range")
        return FetchAtt(base, section, partial, peek)

    def section_part(self) -> tuple[int, ...]:
        part = []
        while 49 <= self.peek() <= 57:
            part.append(self.number("part number", 1))
            if self.peek() != 46 or not 49 <= (self.b[self.i + 1] if self.i + 1 < len(self.b) else 0) <= 57:
                break
            self.i += 1
        return tuple(part)

    def section(self) -> Section:
        part = self.section_part()
        if part:
            if self.peek() != 46:
                return Section(part)
            self.i += 1
        elif self.peek() == 93:
            return Section()
        text = self.match(_SECTION_TEXT, "section text").decode("ascii").upper()
        if text == "MIME" and not part:
            raise self.fail("MIME needs a part number")
        fields: tuple[str, ...] = ()
        if text.startswith("HEADER.FIELDS"):
            self.sp("header field list")
            fields = self.paren_list(lambda: self.astring("header field name").decode("ascii", "replace").upper(),
                                     "header field list", empty_ok=False)  # fmt: skip
        return Section(part, text, fields)

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
    "SEARCH": _Parser.cmd_search, "FETCH": _Parser.cmd_fetch, "STORE": _Parser.cmd_store,
    "COPY": _Parser.cmd_copy, "MOVE": _Parser.cmd_copy, "ID": _Parser.cmd_id, "ENABLE": _Parser.cmd_enable,
}  # fmt: skip
