"""IMAP token grammar: the base rules every command is built from.

Owns ParseError and the cursor over one framed command: atoms, numbers, quoted
strings and literals, astrings, mailbox names, sequence sets, flags, dates and
mod-sequences (the RFC 3501 section 9 base rules). Its own module so the
command, SEARCH and FETCH grammars share one reader and one error type.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from coremail.imapd.values import MAX_NUMBER, SequenceSet, decode_mailbox

__all__ = ["MAX_MODSEQ", "ParseError", "TokenReader"]

MAX_MODSEQ = 2**63 - 1

_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
_ASTRING = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
_LIST_CHARS = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\\]+')
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_UNESCAPE = re.compile(rb"\\(.)")
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,20})\+?\}\r?\n")
_NUMBER = re.compile(rb"[0-9]+")
_SEQSET = re.compile(rb"[0-9*:,$]+")
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


class TokenReader:
    """A cursor over one framed command; the grammar mixins build on it."""

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

    def name_of(self, raw: bytes, inbox: bool, pattern: bool = False) -> str:
        try:
            name = raw.decode("utf-8") if self.utf8 else decode_mailbox(raw)
        except ValueError as e:
            if pattern and raw.isascii():
                name = raw.decode("ascii")  # a pattern that names nothing: LIST answers OK
            else:
                # well-formed syntax, a name no mailbox can have: NO, not BAD (RFC 3501 5.1.3)
                raise ParseError(self.tag, f"Invalid mailbox name: {e}", status="NO") from None
        # INBOX is case-insensitive (RFC 3501 5.1); other names are not
        return "INBOX" if inbox and name.upper() == "INBOX" else name

    def mailbox(self, what: str = "mailbox name", inbox: bool = True) -> str:
        return self.name_of(self.astring(what), inbox)

    def list_mailbox(self) -> str:
        c = self.peek()
        raw = self.string("pattern") if c in (34, 123) else self.match(_LIST_CHARS, "pattern")
        return self.name_of(raw, False, pattern=True)

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

    def option(self, known: frozenset[str], what: str) -> str:
        word = self.word(what)
        if word not in known:
            raise self.fail(f"Unknown {what} {word[:20]}")
        return word
