"""IMAP FETCH grammar: the FETCH command, its attributes and body sections.

Owns RFC 3501 fetch-att (macros, BODY[section]<partial>, .PEEK), BINARY and
BINARY.SIZE (RFC 3516) and CONDSTORE/QRESYNC's CHANGEDSINCE and VANISHED
modifiers. Split from parser.py so the section grammar sits in one place.
"""

from __future__ import annotations

import re

from coremail.imapd.tokens import TokenReader
from coremail.imapd.values import Fetch, FetchAtt, Section

__all__ = ["FetchGrammar"]

_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_TEXT = re.compile(rb"HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME", re.I)
_SIMPLE_ATTS = frozenset(
    "ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODYSTRUCTURE "
    "UID MODSEQ EMAILID THREADID SAVEDATE".split()
)
_MACROS = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


class FetchGrammar(TokenReader):
    """The FETCH command, mixed into the command parser."""

    __slots__ = ()

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
