"""IMAP value types, command shapes and wire formatting.

Owns sequence sets (resolved lazily, never expanded into sets), modified UTF-7
mailbox names (RFC 3501 section 5.1.3), the typed commands parse_command
returns, and the reply-side quoting of strings, flags and dates, so every
response quotes the same way.
"""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = [
    "Append", "AppendMessage", "Authenticate", "Command", "Copy", "Create", "Enable", "Expunge",
    "Fetch", "FetchAtt", "GetQuota", "Id", "List", "Login", "MailboxArgs", "Qresync", "Rename",
    "Search", "SearchKey", "Section", "Select", "Status", "Store",
    "MAX_NUMBER",
    "SequenceSet",
    "decode_mailbox",
    "encode_mailbox",
    "format_flags",
    "format_mailbox",
    "imap_date",
    "nstring",
    "quote_astring",
    "quote_string",
]

MAX_NUMBER = 0xFFFFFFFF  # nz-number and uniqueid are 32-bit
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ASTRING = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
_QUOTABLE = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_SHIFT_RUN = re.compile(rb"&([A-Za-z0-9+,]*)-")


def _seq_number(text: bytes) -> int | None:
    if text == b"*":
        return None
    if not text.isdigit() or text[0] == 48:  # "0" and leading zeros are not nz-numbers
        raise ValueError(f"{text.decode('ascii', 'replace') or 'empty'} is not a valid number")
    n = int(text)
    if n > MAX_NUMBER:
        raise ValueError(f"{n} is too large")
    return n


class SequenceSet:
    """``1:*,3,5:7`` or ``$``: a list of (lo, hi) items, None standing for ``*``.

    Resolve it against the mailbox's highest value (message count, or highest
    UID) with ``contains``/``iter``/``ranges``; nothing here expands ``1:*``.
    """

    __slots__ = ("items", "saved", "_cache")

    def __init__(self, items: Iterable[tuple[int | None, int | None]] = (), saved: bool = False) -> None:
        self.items: tuple[tuple[int | None, int | None], ...] = tuple(items)
        self.saved = saved  # "$": the saved search result (RFC 5182), substitute before use
        self._cache: tuple[int, list[int], list[int]] | None = None

    @classmethod
    def parse(cls, text: bytes | str) -> SequenceSet:
        """Parse the wire form; raises ValueError with a reason."""
        if isinstance(text, str):
            text = text.encode("ascii", "replace")
        if text == b"$":
            return cls((), saved=True)
        items = []
        for piece in text.split(b","):
            lo, colon, hi = piece.partition(b":")
            first = _seq_number(lo)
            items.append((first, _seq_number(hi) if colon else first))
        return cls(items)

    @classmethod
    def from_ints(cls, numbers: Iterable[int]) -> SequenceSet:
        """The most compact set holding exactly these numbers (e.g. for COPYUID)."""
        items: list[list[int]] = []
        for n in sorted(set(numbers)):
            if items and n == items[-1][1] + 1:
                items[-1][1] = n
            else:
                items.append([n, n])
        return cls((a, b) for a, b in items)

    def ranges(self, star: int) -> list[tuple[int, int]]:
        """Merged ascending (lo, hi) ranges with ``*`` = star (0: empty mailbox)."""
        if self.saved:
            raise ValueError("substitute the saved search result ($) first")
        out = []
        for lo, hi in self.items:
            if lo is None or hi is None:
                if star <= 0:
                    continue  # "*" names no message in an empty mailbox
                lo = star if lo is None else lo
                hi = star if hi is None else hi
            out.append((lo, hi) if lo <= hi else (hi, lo))
        out.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in out:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def contains(self, n: int, star: int) -> bool:
        cache = self._cache
        if cache is None or cache[0] != star:
            r = self.ranges(star)
            cache = self._cache = (star, [a for a, _ in r], [b for _, b in r])
        i = bisect_right(cache[1], n) - 1
        return i >= 0 and n <= cache[2][i]

    def iter(self, star: int, existing: list[int] | None = None) -> Iterator[int]:
        """Members in ascending order, each once.

        Without ``existing`` (sequence numbers): members within 1..star.
        With ``existing`` (the mailbox's sorted UIDs): those UIDs in the set,
        found by bisection, so ``1:*`` costs one slice.
        """
        for lo, hi in self.ranges(star):
            if existing is None:
                yield from range(lo, min(hi, star) + 1)
            else:
                yield from existing[bisect_left(existing, lo) : bisect_right(existing, hi)]

    def max_value(self, star: int) -> int:
        """Highest number named (0 if none): above star means a bad message number."""
        r = self.ranges(star)
        return r[-1][1] if r else 0

    def __str__(self) -> str:
        if self.saved:
            return "$"

        def one(n: int | None) -> str:
            return "*" if n is None else str(n)

        return ",".join(one(a) if a == b else f"{one(a)}:{one(b)}" for a, b in self.items)

    def to_bytes(self) -> bytes:
        return str(self).encode("ascii")

    def __repr__(self) -> str:
        return f"SequenceSet({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SequenceSet):
            return NotImplemented
        return self.items == other.items and self.saved == other.saved

    def __hash__(self) -> int:
        return hash((self.items, self.saved))


def encode_mailbox(name: str) -> bytes:
    """A mailbox name in modified UTF-7, as IMAP4rev1 puts it on the wire."""
    out: list[bytes] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be", "surrogatepass")
            out.append(b"&" + base64.b64encode(data).rstrip(b"=").replace(b"/", b",") + b"-")
            pending.clear()

    for ch in name:
        if " " <= ch <= "~":
            flush()
            out.append(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            pending.append(ch)
    flush()
    return b"".join(out)


def decode_mailbox(raw: bytes) -> str:
    """Decode a modified UTF-7 name; raises ValueError when it is malformed.

    Names with 8-bit octets are taken as UTF-8: clients that send them mean it.
    """
    if not raw.isascii():
        return raw.decode("utf-8")
    out = []
    pos = 0
    while (amp := raw.find(b"&", pos)) >= 0:
        out.append(raw[pos:amp].decode("ascii"))
        m = _SHIFT_RUN.match(raw, amp)
        if m is None:
            raise ValueError("unterminated '&' sequence in modified UTF-7")
        run = m.group(1)
        if not run:
            out.append("&")
        else:
            try:
                data = base64.b64decode(run.replace(b",", b"/") + b"=" * (-len(run) % 4), validate=True)
            except binascii.Error:
                raise ValueError("bad base64 in modified UTF-7") from None
            if len(data) % 2:
                raise ValueError("odd UTF-16 length in modified UTF-7")
            out.append(data.decode("utf-16-be"))  # lone surrogates raise UnicodeDecodeError
        pos = m.end()
    out.append(raw[pos:].decode("ascii"))
    return "".join(out)


def quote_string(value: bytes | str) -> bytes:
    """A quoted string when the octets allow it, otherwise a literal."""
    b = value.encode("utf-8") if isinstance(value, str) else value
    if len(b) < 4096 and _QUOTABLE.fullmatch(b):
        return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n%s" % (len(b), b)


def quote_astring(value: bytes | str) -> bytes:
    """The shortest correct astring: atom, quoted string or literal."""
    b = value.encode("utf-8") if isinstance(value, str) else value
    # NIL would read back as "no value" where an nstring is expected
    if _ASTRING.fullmatch(b) and b.upper() != b"NIL":
        return b
    return quote_string(b)


def nstring(value: bytes | str | None) -> bytes:
    return b"NIL" if value is None else quote_string(value)


def format_mailbox(name: str, utf8: bool = False) -> bytes:
    """A mailbox name ready for a response (modified UTF-7 unless UTF8=ACCEPT)."""
    return quote_astring(name.encode("utf-8") if utf8 else encode_mailbox(name))


def format_flags(flags: Iterable[str]) -> bytes:
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def imap_date(dt: datetime) -> bytes:
    """INTERNALDATE's quoted date-time, e.g. ``"17-Jul-1996 02:44:25 -0700"``.

    A naive datetime is taken as UTC.
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    offset = dt.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f'"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} '
        f'{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"'
    ).encode("ascii")


# --- command shapes: what parse_command returns ------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str  # upper case: "FETCH" for both FETCH and UID FETCH
    args: object = None  # one of the argument classes below, or None
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str  # upper case
    initial_response: bytes | None = None  # SASL-IR, already base64-decoded; "=" gives b""


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Qresync:
    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select:  # SELECT and EXAMINE
    mailbox: str
    condstore: bool = False
    qresync: Qresync | None = None


@dataclass(frozen=True, slots=True)
class MailboxArgs:  # DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT
    mailbox: str


@dataclass(frozen=True, slots=True)
class Create:
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 CREATE-SPECIAL-USE


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class List:  # LIST and LSUB
    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()  # upper case: SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE
    return_opts: tuple[str, ...] = ()  # upper case: SUBSCRIBED CHILDREN SPECIAL-USE STATUS MYRIGHTS
    return_status: tuple[str, ...] = ()  # the items of RETURN (STATUS (...)), RFC 5819
    extended: bool = False  # any LIST-EXTENDED syntax was used


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[str, ...]  # upper case


@dataclass(frozen=True, slots=True)
class AppendMessage:
    message: bytes
    flags: tuple[str, ...] = ()
    date_time: datetime | None = None
    binary: bool = False  # sent as literal8 (~{n}), RFC 3516


@dataclass(frozen=True, slots=True)
class Append:
    mailbox: str
    messages: tuple[AppendMessage, ...]  # more than one with MULTIAPPEND


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One node of a search: ``op`` upper case, ``args`` by op.

    AND (keys...), OR (k1, k2), NOT (k,), SEQ/UID (SequenceSet,), flag keys
    like SEEN (), string keys like FROM (str,), HEADER (field, value), date
    keys like SINCE (date,), LARGER/SMALLER/OLDER/YOUNGER (int,), KEYWORD/
    UNKEYWORD (flag,), MODSEQ (modseq, entry_name | None, entry_type | None).
    """

    op: str
    args: tuple = ()


@dataclass(frozen=True, slots=True)
class Search:
    key: SearchKey
    charset: str | None = None  # "UTF-8" or "US-ASCII" when given
    return_opts: tuple[str, ...] | None = None  # ESEARCH RETURN (...); None: plain SEARCH


@dataclass(frozen=True, slots=True)
class Sort:
    keys: tuple[tuple[str, bool], ...]  # (ARRIVAL | CC | DATE | ..., reverse)
    key: SearchKey
    charset: str
    return_opts: tuple[str, ...] | None = None  # ESORT RETURN (...); None: plain SORT


@dataclass(frozen=True, slots=True)
class Thread:
    algorithm: str  # ORDEREDSUBJECT or REFERENCES
    key: SearchKey
    charset: str


@dataclass(frozen=True, slots=True)
class Section:
    """``[1.2.HEADER.FIELDS (FROM TO)]``: part path, text spec, field names."""

    part: tuple[int, ...] = ()
    text: str | None = None  # HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()  # upper case

    def spec(self) -> str:
        out = ".".join(map(str, self.part))
        if self.text:
            out = f"{out}.{self.text}" if out else self.text
        if self.fields:
            out += " (" + " ".join(self.fields) + ")"
        return out


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One FETCH item. BODY with no section is the non-extensible BODYSTRUCTURE."""

    name: str  # ENVELOPE FLAGS ... BODY BINARY BINARY.SIZE (PEEK folded into ``peek``)
    section: Section | None = None
    partial: tuple[int, int] | None = None  # (origin, length)
    peek: bool = False

    def response_name(self) -> str:
        """How the item is named in the FETCH response (``BODY[TEXT]<0>``)."""
        if self.section is None:
            return self.name
        out = f"{self.name}[{self.section.spec()}]"
        return f"{out}<{self.partial[0]}>" if self.partial else out


@dataclass(frozen=True, slots=True)
class Fetch:
    seqset: SequenceSet
    items: tuple[FetchAtt, ...]
    changedsince: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    seqset: SequenceSet
    mode: str  # "+", "-" or "" (replace)
    silent: bool
    flags: tuple[str, ...]
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:  # COPY and MOVE
    seqset: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Expunge:  # UID EXPUNGE
    seqset: SequenceSet


@dataclass(frozen=True, slots=True)
class Id:
    params: tuple[tuple[str, str | None], ...] | None  # None for ID NIL


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]  # upper case


@dataclass(frozen=True, slots=True)
class GetQuota:
    root: str
