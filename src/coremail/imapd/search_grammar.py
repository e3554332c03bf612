"""IMAP SEARCH grammar: the SEARCH command and its search keys, and SORT and
THREAD (RFC 5256, ESORT of RFC 5267, SORT=DISPLAY of RFC 5957), which end in
the same search criteria.

Owns RFC 3501 search criteria (nested with parentheses, NOT and OR, bounded in
depth), CHARSET, ESEARCH RETURN options (RFC 4731/5182) and CONDSTORE's
MODSEQ key. Split from parser.py because it is the largest single grammar.
"""

from __future__ import annotations

from coremail.imapd.tokens import ParseError, TokenReader
from coremail.imapd.values import Search, SearchKey, Sort, Thread

__all__ = ["MAX_DEPTH", "SearchGrammar"]

MAX_DEPTH = 64  # search-key nesting; deeper is an attack, not a query
_ESEARCH_RETURN = frozenset("MIN MAX ALL COUNT SAVE".split())
_CHARSETS = frozenset(("UTF-8", "US-ASCII"))
_SORT_KEYS = frozenset("ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO".split())
_THREAD_ALGORITHMS = frozenset(("ORDEREDSUBJECT", "REFERENCES"))
_SEARCH_FLAGS = frozenset(
    "ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN".split()
)
_SEARCH_STRINGS = frozenset("BCC BODY CC FROM SUBJECT TEXT TO".split())
_SEARCH_DATES = frozenset("BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE".split())
_SEARCH_NUMBERS = frozenset("LARGER SMALLER OLDER YOUNGER".split())
_SEARCH_WITH_ARGS = _SEARCH_STRINGS | _SEARCH_DATES | _SEARCH_NUMBERS | {
    "UID", "KEYWORD", "UNKEYWORD", "HEADER", "NOT", "OR", "MODSEQ"}  # fmt: skip


class SearchGrammar(TokenReader):
    """The SEARCH command, mixed into the command parser."""

    __slots__ = ()

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
            charset = self.charset()
            self.sp("search criteria")
        return Search(self.criteria(), charset, returns)

    def charset(self) -> str:
        charset = self.astring("charset").decode("ascii", "replace").upper()
        if charset not in _CHARSETS:
            raise ParseError(self.tag, f"Charset {charset[:40]} is not supported", status="NO",
                             code="BADCHARSET (UTF-8 US-ASCII)")  # fmt: skip
        return charset

    def criteria(self) -> SearchKey:
        keys = [self.search_key(0)]
        while self.peek() == 32:
            self.i += 1
            keys.append(self.search_key(0))
        return keys[0] if len(keys) == 1 else SearchKey("AND", tuple(keys))

    def cmd_sort(self) -> Sort:
        self.sp("sort criteria")
        returns = None
        if self.peek_word() == "RETURN":   # ESORT
            self.i += 6
            self.sp("return options")
            returns = self.paren_list(lambda: self.option(_ESEARCH_RETURN - {"SAVE"}, "return option"),
                                      "return options")
            self.sp("sort criteria")
        keys = self.paren_list(self.sort_key, "sort criteria", empty_ok=False)
        self.sp("charset")
        charset = self.charset()
        self.sp("search criteria")
        return Sort(keys, self.criteria(), charset, returns)

    def sort_key(self) -> tuple[str, bool]:
        word = self.word("sort key")
        reverse = word == "REVERSE"
        if reverse:
            self.sp("sort key")
            word = self.word("sort key")
        if word not in _SORT_KEYS:
            raise self.fail(f"Unknown sort key {word[:20]}")
        return word, reverse

    def cmd_thread(self) -> Thread:
        self.sp("threading algorithm")
        algorithm = self.option(_THREAD_ALGORITHMS, "threading algorithm")
        self.sp("charset")
        charset = self.charset()
        self.sp("search criteria")
        return Thread(algorithm, self.criteria(), charset)

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
