"""IMAP command grammar: RFC 3501 examples, every error path, and properties.

The properties: random bytes only ever raise ParseError; generated commands
survive a trip through our own serialisation; and the framer yields the same
events however the stream is chunked.
"""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coremail.imapd.parser import (
    Append,
    AppendMessage,
    CONTINUATION,
    Authenticate,
    Command,
    CommandFramer,
    ContinuationNeeded,
    Copy,
    Create,
    Enable,
    Expunge,
    Fetch,
    FetchAtt,
    FramedCommand,
    FramingError,
    GetQuota,
    Id,
    List,
    Login,
    MailboxArgs,
    ParseError,
    Qresync,
    RawLine,
    Rename,
    Search,
    SearchKey,
    Section,
    Select,
    SequenceSet,
    Status,
    Store,
    decode_mailbox,
    encode_mailbox,
    format_flags,
    format_mailbox,
    imap_date,
    nstring,
    parse_command,
    quote_astring,
    quote_string,
)

S = SequenceSet.parse
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def args(raw: bytes):
    return parse_command(raw).args


# --- RFC 3501 sections 6 and 8 ------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"abcd CAPABILITY", Command("abcd", "CAPABILITY")),
        (b"a002 NOOP", Command("a002", "NOOP")),
        (b"A023 LOGOUT", Command("A023", "LOGOUT")),
        (b"a002 STARTTLS", Command("a002", "STARTTLS")),
        (b"A001 AUTHENTICATE GSSAPI", Command("A001", "AUTHENTICATE", Authenticate("GSSAPI"))),
        (b"a001 login SMITH SESAME", Command("a001", "LOGIN", Login("SMITH", "SESAME"))),
        (b"A142 SELECT INBOX", Command("A142", "SELECT", Select("INBOX"))),
        (b"A932 EXAMINE blurdybloop", Command("A932", "EXAMINE", Select("blurdybloop"))),
        (b"A003 CREATE owatagusiam/", Command("A003", "CREATE", Create("owatagusiam/"))),
        (b"A683 DELETE blurdybloop", Command("A683", "DELETE", MailboxArgs("blurdybloop"))),
        (b"A683 RENAME blurdybloop sarasoop", Command("A683", "RENAME", Rename("blurdybloop", "sarasoop"))),
        (b"A002 SUBSCRIBE #news.comp.mail.mime", Command("A002", "SUBSCRIBE", MailboxArgs("#news.comp.mail.mime"))),
        (b"A002 UNSUBSCRIBE #news.comp.mail.mime", Command("A002", "UNSUBSCRIBE", MailboxArgs("#news.comp.mail.mime"))),
        (b'A101 LIST "" ""', Command("A101", "LIST", List("", ("",)))),
        (b'A102 LIST #news.comp.mail.misc ""', Command("A102", "LIST", List("#news.comp.mail.misc", ("",)))),
        (b'A103 LIST /usr/staff/jones ""', Command("A103", "LIST", List("/usr/staff/jones", ("",)))),
        (b"A202 LIST ~/Mail/ %", Command("A202", "LIST", List("~/Mail/", ("%",)))),
        (b'A002 LSUB "#news." "comp.mail.*"', Command("A002", "LSUB", List("#news.", ("comp.mail.*",)))),
        (b'A003 LSUB "#news." "comp.%"', Command("A003", "LSUB", List("#news.", ("comp.%",)))),
        (b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
         Command("A042", "STATUS", Status("blurdybloop", ("UIDNEXT", "MESSAGES")))),
        (b"FXXZ CHECK", Command("FXXZ", "CHECK")),
        (b"A341 CLOSE", Command("A341", "CLOSE")),
        (b"A202 EXPUNGE", Command("A202", "EXPUNGE")),
        (b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
         Command("A282", "SEARCH", Search(SearchKey("AND", (
             SearchKey("FLAGGED"), SearchKey("SINCE", (date(1994, 2, 1),)),
             SearchKey("NOT", (SearchKey("FROM", ("Smith",)),))))))),
        (b'A284 SEARCH TEXT "string not in mailbox"',
         Command("A284", "SEARCH", Search(SearchKey("TEXT", ("string not in mailbox",))))),
        (b"A285 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX",
         Command("A285", "SEARCH", Search(SearchKey("TEXT", ("XXXXXX",)), "UTF-8"))),
        (b"A003 STORE 2:4 +FLAGS (\\Deleted)",
         Command("A003", "STORE", Store(S("2:4"), "+", False, ("\\Deleted",)))),
        (b"A003 COPY 2:4 MEETING", Command("A003", "COPY", Copy(S("2:4"), "MEETING"))),
        (b"A999 UID FETCH 4827313:4828442 FLAGS",
         Command("A999", "FETCH", Fetch(S("4827313:4828442"), (FetchAtt("FLAGS"),)), uid=True)),
        (b"a5 IDLE", Command("a5", "IDLE")),
        (b"a6 UNSELECT", Command("a6", "UNSELECT")),
        (b"a7 NAMESPACE", Command("a7", "NAMESPACE")),
        (b"a8 MOVE 1:3 Trash", Command("a8", "MOVE", Copy(S("1:3"), "Trash"))),
        (b"a9 UID MOVE 42 Trash", Command("a9", "MOVE", Copy(S("42"), "Trash"), uid=True)),
        (b"a10 UID EXPUNGE 3000:3002", Command("a10", "EXPUNGE", Expunge(S("3000:3002")), uid=True)),
        (b"a11 GETQUOTA \"\"", Command("a11", "GETQUOTA", GetQuota(""))),
        (b"a12 GETQUOTAROOT INBOX", Command("a12", "GETQUOTAROOT", MailboxArgs("INBOX"))),
        (b"a13 ENABLE CONDSTORE UTF8=ACCEPT", Command("a13", "ENABLE", Enable(("CONDSTORE", "UTF8=ACCEPT")))),
        (b'a14 ID ("name" "sodr" "version" "19.34" "vendor" NIL)',
         Command("a14", "ID", Id((("name", "sodr"), ("version", "19.34"), ("vendor", None))))),
        (b"a15 ID NIL", Command("a15", "ID", Id(None))),
    ],
)  # fmt: skip
def test_rfc_examples(raw: bytes, expected: Command) -> None:
    assert parse_command(raw) == expected


def test_fetch_rfc_example_and_macros() -> None:
    fetch = args(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
    assert fetch.seqset == S("2:4")
    assert fetch.items == (FetchAtt("FLAGS"), FetchAtt("BODY", Section((), "HEADER.FIELDS", ("DATE", "FROM"))))
    assert fetch.items[1].response_name() == "BODY[HEADER.FIELDS (DATE FROM)]"
    names = lambda raw: [a.name for a in args(raw).items]  # noqa: E731
    assert names(b"a FETCH 1 FAST") == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert names(b"a FETCH 1 all") == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]
    assert names(b"a FETCH 1 FULL") == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]
    assert args(b"a FETCH 1 FULL").items[-1].section is None  # BODY alone: the structure


def test_fetch_sections_partials_and_modifiers() -> None:
    cmd = parse_command(
        b"a UID FETCH 1:* (UID BODY.PEEK[1.2.MIME] body[]<0.2048> BODY[3.TEXT] BODY[4.HEADER] "
        b"BODY.PEEK[HEADER.FIELDS.NOT (Received x-spam)] BINARY.PEEK[1]<5.10> BINARY.SIZE[2] "
        b"BODYSTRUCTURE MODSEQ RFC822.SIZE) (CHANGEDSINCE 12345 VANISHED)"
    )
    f = cmd.args
    assert cmd.uid and f.changedsince == 12345 and f.vanished
    assert f.items[1] == FetchAtt("BODY", Section((1, 2), "MIME"), None, True)
    assert f.items[1].response_name() == "BODY[1.2.MIME]"
    assert f.items[2].response_name() == "BODY[]<0>" and f.items[2].partial == (0, 2048)
    assert f.items[3].section == Section((3,), "TEXT")
    assert f.items[4].section == Section((4,), "HEADER")
    assert f.items[5].section == Section((), "HEADER.FIELDS.NOT", ("RECEIVED", "X-SPAM"))
    assert f.items[6] == FetchAtt("BINARY", Section((1,)), (5, 10), True)
    assert f.items[6].response_name() == "BINARY[1]<5>"
    assert f.items[7].response_name() == "BINARY.SIZE[2]"
    assert [a.name for a in f.items[-3:]] == ["BODYSTRUCTURE", "MODSEQ", "RFC822.SIZE"]
    assert args(b"a FETCH 1 BODY[]").items[0].section == Section()


def test_store_variants() -> None:
    assert args(b"a STORE 1 FLAGS.SILENT (\\seen $Forwarded)") == Store(S("1"), "", True, ("\\Seen", "$Forwarded"))
    assert args(b"a STORE 1 -FLAGS \\Flagged \\Draft") == Store(S("1"), "-", False, ("\\Flagged", "\\Draft"))
    assert args(b"a STORE 1:* +flags ()") == Store(S("1:*"), "+", False, ())
    assert args(b"a STORE 7,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)") == Store(
        S("7,9"), "+", True, ("\\Deleted",), 320162338
    )


def test_select_condstore_qresync() -> None:
    assert args(b"a SELECT inbox (CONDSTORE)") == Select("INBOX", condstore=True)
    q = args(b"A03 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))").qresync
    assert q == Qresync(67890007, 20050715194045000, S("41,43:211,214:541"))
    q = args(b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500 15000,22500)))").qresync
    assert q.seq_match == (S("5000,7500"), S("15000,22500"))
    q = args(b"B05 EXAMINE INBOX (QRESYNC (1 2 (3 4)))").qresync
    assert q.known_uids is None and q.seq_match == (S("3"), S("4"))


def test_list_extended_and_special_use() -> None:
    assert args(b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "Sent/%") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))') == List(
        "", ("INBOX", "Sent/%"), ("SUBSCRIBED", "RECURSIVEMATCH"), ("CHILDREN", "STATUS"), ("MESSAGES", "UNSEEN"), True
    )
    assert args(b'a LIST "" "*" RETURN (SPECIAL-USE)').return_opts == ("SPECIAL-USE",)
    assert args(b'a LIST (SPECIAL-USE) "" *').selection == ("SPECIAL-USE",)
    assert args(b"a CREATE Archive (USE (\\Archive))") == Create("Archive", ("\\Archive",))


def test_status_items_and_append() -> None:
    assert args(b"a STATUS Sent (MESSAGES HIGHESTMODSEQ unseen size)").items == ("MESSAGES", "HIGHESTMODSEQ", "UNSEEN", "SIZE")
    raw = (b'A003 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0800" {23}\r\n'
           b"Date: Mon, 7 Feb 1994 2")  # fmt: skip
    a = args(raw)
    when = datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8)))
    assert a == Append("saved-messages", (AppendMessage(b"Date: Mon, 7 Feb 1994 2", ("\\Seen",), when),))
    multi = args(b"a APPEND INBOX {2+}\r\nhi (\\Draft) ~{3}\r\n\x00\x01\x02")
    assert multi.messages == (AppendMessage(b"hi"), AppendMessage(b"\x00\x01\x02", ("\\Draft",), None, True))


def test_search_grammar() -> None:
    key = args(b"a SEARCH OR (SEEN FLAGGED) NOT 2:4,* UID 1:5 LARGER 100 HEADER X-Foo bar").key
    assert key == SearchKey("AND", (
        SearchKey("OR", (SearchKey("AND", (SearchKey("SEEN"), SearchKey("FLAGGED"))), SearchKey("NOT", (SearchKey("SEQ", (S("2:4,*"),)),)))),
        SearchKey("UID", (S("1:5"),)), SearchKey("LARGER", (100,)), SearchKey("HEADER", ("X-Foo", "bar")),
    ))  # fmt: skip
    assert args(b"a SEARCH (((SEEN)))").key == SearchKey("SEEN")
    assert args(b'a SEARCH SENTON "3-Mar-2024" KEYWORD $Junk UNKEYWORD \\Seen').key.args == (
        SearchKey("SENTON", (date(2024, 3, 3),)), SearchKey("KEYWORD", ("$Junk",)), SearchKey("UNKEYWORD", ("\\Seen",))
    )
    assert args(b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338').key == SearchKey("MODSEQ", (620162338, "/flags/\\draft", "all"))
    assert args(b"a SEARCH MODSEQ 5").key == SearchKey("MODSEQ", (5, None, None))
    s = args(b"a UID SEARCH RETURN (MIN COUNT SAVE) CHARSET us-ascii $")
    assert s == Search(SearchKey("SEQ", (SequenceSet(saved=True),)), "US-ASCII", ("MIN", "COUNT", "SAVE"))
    assert args(b"a SEARCH RETURN () ALL").return_opts == ()
    assert args(b"a SEARCH YOUNGER 3600").key == SearchKey("YOUNGER", (3600,))
    assert args(b"a SEARCH SUBJECT {4+}\r\n\xc3\xa4\xc3\xb6").key == SearchKey("SUBJECT", ("äö",))


@pytest.mark.parametrize("raw", [b"a SELECT &Jjo", b"a SELECT &Jj-", b"a SELECT &2D3-",
                                 b"a CREATE !#$&'+,-.0123456789:;<=>?@^_`|[}"])
def test_a_valid_atom_that_is_not_modified_utf7_is_no(raw: bytes) -> None:
    with pytest.raises(ParseError) as e:   # a name no mailbox has, not a syntax error
        parse_command(raw)
    assert e.value.response().startswith(b"a NO Invalid mailbox name")


def test_a_pattern_that_is_not_modified_utf7_lists_nothing() -> None:
    assert parse_command(b'a LIST "" &Jjo%').args.patterns == ("&Jjo%",)


def test_recursivematch_alone_is_bad() -> None:
    for raw in (b'a LIST (RECURSIVEMATCH) "" ""', b'a LIST (RECURSIVEMATCH REMOTE) "" %'):
        with pytest.raises(ParseError, match="RECURSIVEMATCH"):
            parse_command(raw)
    assert parse_command(b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" %').args.selection == (
        "SUBSCRIBED", "RECURSIVEMATCH")


def test_badcharset_is_no_with_code() -> None:
    with pytest.raises(ParseError) as e:
        parse_command(b"A1 SEARCH CHARSET KOI8-R TEXT x")
    assert e.value.status == "NO" and e.value.code.startswith("BADCHARSET")
    assert e.value.response() == b"A1 NO [BADCHARSET (UTF-8 US-ASCII)] Charset KOI8-R is not supported\r\n"


def test_error_responses_stay_on_one_line() -> None:
    with pytest.raises(ParseError) as e:
        parse_command(b"A1 SEARCH CHARSET {12}\r\nx\r\nA2 LOGOUT TEXT y")
    assert e.value.response() == b"A1 NO [BADCHARSET (UTF-8 US-ASCII)] Charset X??A2 LOGOUT is not supported\r\n"


def test_authenticate_and_login_details() -> None:
    assert args(b"a AUTHENTICATE PLAIN AGZvbwBiYXI=") == Authenticate("PLAIN", b"\x00foo\x00bar")
    assert args(b"a AUTHENTICATE external =") == Authenticate("EXTERNAL", b"")
    assert args(b'a LOGIN "fred smith" {5}\r\np"s\\w') == Login("fred smith", 'p"s\\w')
    assert args(b'a LOGIN u "a\\"b\\\\c"') == Login("u", 'a"b\\c')
    with pytest.raises(ParseError):  # the framer removes the final CRLF
        parse_command(b"a LOGIN u p\r\n")


def test_mailbox_names() -> None:
    assert args(b"a SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-").mailbox == "~peter/mail/台北/日本語"
    assert args(b"a SELECT &-Co").mailbox == "&Co"
    assert args(b'a DELETE "InBoX"').mailbox == "INBOX"
    assert args(b"a DELETE INBOX.sub").mailbox == "INBOX.sub"
    assert args(b'a RENAME INBOX "Old &AOQ-"') == Rename("INBOX", "Old ä")
    assert parse_command(b'a SELECT "Entw\xc3\xbcrfe"').args.mailbox == "Entwürfe"
    assert parse_command(b'a SELECT "A&B"', utf8=True).args.mailbox == "A&B"
    assert args(b'a LIST "" "&ZeVnLIqe-/%"').patterns == ("日本語/%",)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "Missing or invalid command tag"),
        (b" a NOOP", "Missing or invalid command tag"),
        (b"a+ NOOP", "Expected a space"),
        (b"a", "Missing command name"),
        (b"a ", "Missing command name"),
        (b"a FROB", "Unknown command FROB"),
        (b"a UID NOOP", "UID NOOP is not a command"),
        (b"a NOOP extra", "Unexpected data after the NOOP command"),
        (b"a NOOP\x00", "Unexpected data"),
        (b"a LOGIN", "Missing user name"),
        (b"a LOGIN user", "Missing password"),
        (b"a LOGIN user  pass", "Invalid password"),
        (b'a LOGIN "user pass', "Unterminated or invalid quoted string"),
        (b'a LOGIN "us\x00er" pass', "Unterminated or invalid quoted string"),
        (b'a LOGIN "us\\ner" pass', "Unterminated or invalid quoted string"),
        (b"a LOGIN {5}\r\nab", "shorter than announced"),
        (b"a LOGIN {3}\r\na\x00b x", "NUL octet"),
        (b"a LOGIN ~{1}\r\na b", "Expected a space before password"),
        (b"a SELECT ~{1}\r\na", "Unexpected data after the SELECT command"),
        (b"a LOGIN {x}\r\na b", "Invalid literal"),
        (b"a LOGIN \xff\xfe x", "Invalid user name"),
        (b'a LOGIN "\xff" x', "not valid UTF-8"),
        (b"a SELECT", "Missing mailbox name"),
        (b"a SELECT INBOX (FOO)", "Unknown SELECT parameter FOO"),
        (b"a SELECT INBOX (CONDSTORE", "Missing closing parenthesis"),
        (b"a SELECT INBOX (QRESYNC (0 1))", "UIDVALIDITY out of range"),
        (b"a FETCH 0 FLAGS", "Invalid sequence set: 0 is not a valid number"),
        (b"a FETCH 01 FLAGS", "Invalid sequence set"),
        (b"a FETCH 1: FLAGS", "Invalid sequence set"),
        (b"a FETCH 1,,2 FLAGS", "Invalid sequence set"),
        (b"a FETCH 4294967296 FLAGS", "too large"),
        (b"a FETCH $,1 FLAGS", "Invalid sequence set"),
        (b"a FETCH FLAGS", "Invalid sequence set"),
        (b"a FETCH 1", "Missing FETCH items"),
        (b"a FETCH 1 (FLAGS", "Missing closing parenthesis of FETCH items"),
        (b"a FETCH 1 ((FLAGS))", "Invalid FETCH item"),
        (b"a FETCH 1 ()", "Invalid FETCH item"),
        (b"a FETCH 1 FLAGS)", "Unexpected data"),
        (b"a FETCH 1 (ALL)", "Unknown FETCH item ALL"),
        (b"a FETCH 1 BOGUS", "Unknown FETCH item BOGUS"),
        (b"a FETCH 1 BODY[", "Missing section text"),
        (b"a FETCH 1 BODY[MIME]", "MIME needs a part number"),
        (b"a FETCH 1 BODY[0]", "Invalid section text"),
        (b"a FETCH 1 BODY[1.]", "Invalid section text"),
        (b"a FETCH 1 BODY[HEADER.FIELDS]", "Expected a space before header field list"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "Invalid header field name"),
        (b"a FETCH 1 BODY[]<1>", "Invalid partial length"),
        (b"a FETCH 1 BODY[]<1.0>", "partial length out of range"),
        (b"a FETCH 1 BODY.PEEK", "Missing section of BODY.PEEK"),
        (b"a FETCH 1 BINARY[1.TEXT]", "end of the BINARY section"),
        (b"a FETCH 1 FLAGS (VANISHED)", "Unknown FETCH modifier VANISHED"),
        (b"a UID FETCH 1 FLAGS (VANISHED)", "VANISHED needs CHANGEDSINCE"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE x)", "Invalid mod-sequence"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", "out of range"),
        (b"a STORE 1 FLAGS", "Missing flags"),
        (b"a STORE 1 XFLAGS (\\Seen)", "Invalid STORE item"),
        (b"a STORE 1 +FLAGS (\\Seen", "Missing closing parenthesis of flag list"),
        (b"a STORE 1 (UNCHANGEDSINCE 1 +FLAGS x", "closing parenthesis of STORE modifiers"),
        (b"a STORE 1 (FOO 1) +FLAGS x", "Only UNCHANGEDSINCE"),
        (b"a COPY 1:2", "Missing mailbox name"),
        (b"a RENAME a", "Missing new mailbox name"),
        (b"a STATUS INBOX ()", "Invalid status item"),
        (b"a STATUS INBOX (FOO)", "Unknown status item FOO"),
        (b"a STATUS INBOX MESSAGES", "Invalid status items"),
        (b"a LIST", "Missing reference name"),
        (b'a LIST ""', "Missing mailbox pattern"),
        (b'a LIST (BOGUS) "" *', "Unknown selection option BOGUS"),
        (b'a LIST "" * RETURN (BOGUS)', "Unknown return option BOGUS"),
        (b'a LIST "" * JUNK', "Expected RETURN"),
        (b'a LIST "" ()', "Invalid pattern"),
        (b"a APPEND INBOX", "Missing message literal"),
        (b'a APPEND INBOX "message"', "Invalid date-time"),
        (b"a APPEND INBOX (\\Seen) hello", "Invalid message literal"),
        (b'a APPEND INBOX "31-Feb-2024 00:00:00 +0000" {1}\r\nx', "No such date-time"),
        (b"a SEARCH", "Missing search criteria"),
        (b"a SEARCH FOO", "Unknown search key FOO"),
        (b"a SEARCH FROM", "Missing argument of FROM"),
        (b"a SEARCH SINCE 32-Jan-2020", "No such date"),
        (b"a SEARCH SINCE 1-Foo-2020", "Invalid date"),
        (b'a SEARCH SINCE "1-Jan-2020', "Missing closing quote of the date"),
        (b"a SEARCH OR SEEN", "Missing second OR criterion"),
        (b"a SEARCH ()", "Invalid search key"),
        (b"a SEARCH (SEEN", "Missing closing parenthesis of search group"),
        (b"a SEARCH SEEN)", "Unexpected data"),
        (b"a SEARCH LARGER -1", "Invalid LARGER size"),
        (b"a SEARCH " + b"NOT " * 100 + b"SEEN", "nested too deeply"),
        (b"a SEARCH " + b"(" * 100 + b"SEEN" + b")" * 100, "nested too deeply"),
        (b'a SEARCH MODSEQ "/flags/x" bogus 5', "Entry type must be priv, shared or all"),
        (b"a SEARCH RETURN (BOGUS) ALL", "Unknown return option BOGUS"),
        (b"a AUTHENTICATE", "Missing SASL mechanism"),
        (b"a AUTHENTICATE PLAIN !!!", "Invalid initial response"),
        (b"a AUTHENTICATE PLAIN AGZvbw", "not valid base64"),
        (b"a ENABLE", "Missing capability"),
        (b"a ID (\"a\")", "Expected a space before ID value"),
        (b"a ID", "Missing ID parameters"),
        (b"a CREATE x (FOO)", "Only the USE parameter"),
        (b"a CREATE x (USE ())", "Invalid flag"),
        (b"a GETQUOTA", "Missing quota root"),
        (b"a UID EXPUNGE", "Missing UID set"),
    ],
)
def test_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_command(raw)
    assert message in e.value.message
    if raw[:1] in (b"", b" "):
        assert e.value.tag is None and e.value.response().startswith(b"* BAD ")
    else:
        assert e.value.response().startswith(raw[:1] + b" BAD ")


# --- values -------------------------------------------------------------------


def test_sequence_set_resolution() -> None:
    s = S("3,5:7,10:*")
    assert s.ranges(12) == [(3, 3), (5, 7), (10, 12)]
    assert [n for n in range(1, 14) if s.contains(n, 12)] == [3, 5, 6, 7, 10, 11, 12]
    assert list(s.iter(8)) == [3, 5, 6, 7, 8]  # "10:*" with * = 8 is 8:10, clipped to 8
    assert list(S("*").iter(0)) == [] and S("*:4").ranges(2) == [(2, 4)]
    assert S("4:2,3").ranges(10) == [(2, 4)]
    assert list(S("1:*").iter(100_000, [5, 9, 70_000])) == [5, 9, 70_000]
    assert list(S("6:9,1").iter(10**6, [1, 5, 9, 12])) == [1, 9]
    assert S("559:*").contains(500, 500)  # RFC 3501: n:* holds the last UID even when n is larger
    assert S("2:3").max_value(10) == 3 and S("*").max_value(0) == 0
    assert str(S("1:*,3,5:7")) == "1:*,3,5:7" and S("7").to_bytes() == b"7"
    assert str(SequenceSet.from_ints([7, 1, 2, 3, 9, 8, 20])) == "1:3,7:9,20"
    assert S("$").saved and str(S("$")) == "$"
    with pytest.raises(ValueError):
        S("$").ranges(5)
    assert S("1:2") == S("1:2") and hash(S("1:2")) == hash(S("1:2")) and S("1:2") != S("2:1")
    assert repr(S("1,2")) == "SequenceSet('1,2')"
    big = S("1:*")
    assert big.contains(99_999, 100_000) and not big.contains(100_001, 100_000)


seq_numbers = st.one_of(st.none(), st.integers(1, 60))


@SETTINGS
@given(st.lists(st.tuples(seq_numbers, seq_numbers), min_size=1, max_size=6), st.integers(0, 70))
def test_sequence_set_matches_brute_force(items, star) -> None:
    s = SequenceSet.parse(str(SequenceSet(items)))
    assert s == SequenceSet(items)
    naive = set()
    for lo, hi in items:
        if star == 0 and (lo is None or hi is None):
            continue
        lo = star if lo is None else lo
        hi = star if hi is None else hi
        naive.update(range(min(lo, hi), max(lo, hi) + 1))
    assert [n for n in range(0, 80) if s.contains(n, star)] == sorted(naive)
    assert list(s.iter(star)) == sorted(n for n in naive if n <= star)
    existing = list(range(1, 80, 3))
    assert list(s.iter(star, existing)) == [n for n in existing if n in naive]
    assert SequenceSet.from_ints(naive).ranges(star) == s.ranges(star)


def test_mailbox_codec_and_quoting() -> None:
    assert encode_mailbox("~peter/mail/台北/日本語") == b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert encode_mailbox("A&B") == b"A&-B" and decode_mailbox(b"A&-B") == "A&B"
    assert encode_mailbox("😀") == b"&2D3eAA-" and decode_mailbox(b"&2D3eAA-") == "😀"
    assert format_mailbox("Entwürfe") == b"Entw&APw-rfe"
    assert format_mailbox("Entwürfe", utf8=True) == b"{9}\r\nEntw\xc3\xbcrfe"
    assert format_mailbox("Sent Items") == b'"Sent Items"'
    assert quote_astring("INBOX") == b"INBOX" and quote_astring(b"a]b") == b"a]b"
    assert quote_astring("") == b'""' and quote_astring("nil") == b'"nil"'
    assert quote_astring('a "b" \\c') == b'"a \\"b\\" \\\\c"'
    assert quote_astring("line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert quote_string("x" * 5000).startswith(b"{5000}\r\n")
    assert nstring(None) == b"NIL" and nstring("x") == b'"x"'
    assert format_flags(["\\Seen", "$Junk"]) == b"(\\Seen $Junk)" and format_flags([]) == b"()"


def test_imap_date() -> None:
    pdt = timezone(timedelta(hours=-7))
    assert imap_date(datetime(1996, 7, 17, 2, 44, 25, tzinfo=pdt)) == b'"17-Jul-1996 02:44:25 -0700"'
    assert imap_date(datetime(2024, 1, 5, 23, 0, 0)) == b'"05-Jan-2024 23:00:00 +0000"'
    ist = timezone(timedelta(hours=5, minutes=30))
    raw = imap_date(datetime(2020, 12, 31, 8, 1, 2, tzinfo=ist))
    assert raw == b'"31-Dec-2020 08:01:02 +0530"'
    assert args(b"a APPEND x " + raw + b" {1}\r\nm").messages[0].date_time == datetime(2020, 12, 31, 8, 1, 2, tzinfo=ist)


@SETTINGS
@given(st.text())
def test_mailbox_codec_round_trip(name: str) -> None:
    wire = encode_mailbox(name)
    assert wire.isascii() and decode_mailbox(wire) == name
    expected = "INBOX" if name.upper() == "INBOX" else name
    assert args(b"a DELETE " + format_mailbox(name)).mailbox == expected


@SETTINGS
@given(st.text().filter(lambda t: "\x00" not in t))
def test_quote_astring_reads_back(value: str) -> None:
    assert args(b"a LOGIN " + quote_astring(value.encode()) + b" p").username == value
    assert args(b"a LOGIN p " + quote_string(value)).password == value


# --- the framer ---------------------------------------------------------------


def feed_all(framer: CommandFramer, chunks) -> list:
    out = []
    for c in chunks:
        out += framer.feed(c)
    return out


def test_framer_literals_and_continuations() -> None:
    f = CommandFramer()
    assert f.feed(b"a1 NOOP\r\n\r\na2 LOGIN {4}\r\n") == [
        FramedCommand(b"a1 NOOP"),
        ContinuationNeeded("a2", 4),
    ]
    assert CONTINUATION == b"+ Ready for literal data\r\n"
    assert f.feed(b"fred {6+}\r\nsecret\r\na3 APPEND x ~{2}\r\n\x00\n\r\n") == [
        FramedCommand(b"a2 LOGIN {4}\r\nfred {6+}\r\nsecret"),
        ContinuationNeeded("a3", 2),
        FramedCommand(b"a3 APPEND x ~{2}\r\n\x00\n"),
    ]
    assert parse_command(b"a2 LOGIN {4}\r\nfred {6+}\r\nsecret").args == Login("fred", "secret")
    assert f.feed(b"a4 NOOP\na5 LOGIN {0}\n {0}\n\n") == [
        FramedCommand(b"a4 NOOP"), ContinuationNeeded("a5", 0), ContinuationNeeded("a5", 0),
        FramedCommand(b"a5 LOGIN {0}\r\n {0}\r\n"),
    ]  # fmt: skip
    assert args(b"a5 LOGIN {0}\r\n {0}\r\n") == Login("", "")


def test_framer_line_limit_recovers() -> None:
    f = CommandFramer(max_line=20)
    events = f.feed(b"a1 LOGIN aaaaaaaaaaaaaaaaaaaaaaaaaaaa b\r\na2 NOOP\r\n")
    assert events == [FramingError("a1", "Line too long (max_line is 20 octets)", "max_line"), FramedCommand(b"a2 NOOP")]
    assert events[0].response() == b"a1 BAD Line too long (max_line is 20 octets)\r\n"
    f = CommandFramer(max_line=20)
    assert f.feed(b"a9 " + b"x" * 40) == [FramingError("a9", "Line too long (max_line is 20 octets)", "max_line")]
    assert f.feed(b"y" * 100) == []
    assert f.feed(b" {5+}\r\n12\r\n4\r\na3 NOOP\r\n") == [FramedCommand(b"a3 NOOP")]  # literal data skipped
    f = CommandFramer(max_line=20)
    assert f.feed(b"a9 LOGIN " + b"x" * 30 + b" {5}\r\na4 NOOP\r\n")[1:] == [FramedCommand(b"a4 NOOP")]
    assert CommandFramer(max_line=5).feed(b"(((((((((\r\n")[0].tag is None


def test_framer_wide_lines_only_for_the_named_command() -> None:
    f = CommandFramer(max_line=20, wide_line=60, wide_head=re.compile(rb"[^ ]+ ID[ (]", re.I))
    long_id = b"a1 id (" + b'"k" "v" ' * 6 + b")"
    assert 20 < len(long_id) < 60
    assert f.feed(long_id + b"\r\n") == [FramedCommand(long_id)]
    too_long = b"a2 ID (" + b"x" * 80 + b")\r\n"
    assert f.feed(too_long + b"a3 LOGIN " + b"y" * 30 + b"\r\na4 NOOP\r\n") == [
        FramingError("a2", "Line too long (max_line is 20 octets)", "max_line"),
        FramingError("a3", "Line too long (max_line is 20 octets)", "max_line"),
        FramedCommand(b"a4 NOOP")]
    assert f.feed(b"a5 IDLE" + b"z" * 30) == [FramingError("a5", "Line too long (max_line is 20 octets)", "max_line")]


def test_framer_literal_limits() -> None:
    f = CommandFramer(max_literal=10)
    events = f.feed(b"a1 APPEND x {11}\r\na2 NOOP\r\n")
    assert events == [FramingError("a1", "Literal too large (max_literal is 10 octets)", "max_literal"), FramedCommand(b"a2 NOOP")]
    assert events[0].response() == b"a1 BAD [TOOBIG] Literal too large (max_literal is 10 octets)\r\n"
    # a non-synchronising literal is on its way regardless: its data is skipped
    events = f.feed(b"a3 APPEND x {11+}\r\nhello\r\nworld a4 NOOP\r\na5 NOOP\r\n")
    assert events == [FramingError("a3", "Literal too large (max_literal is 10 octets)", "max_literal"), FramedCommand(b"a5 NOOP")]
    f = CommandFramer(max_literal=10, max_command=30)
    events = f.feed(b"a1 LOGIN {10+}\r\n0123456789 {10+}\r\n0123456789\r\na2 NOOP\r\n")
    assert [type(e) for e in events] == [FramingError, FramedCommand] and events[0].limit == "max_command"


def test_framer_line_mode_for_idle_and_authenticate() -> None:
    f = CommandFramer()
    f.receive(b"a1 IDLE\r\nDONE\r\na2 AUTHENTICATE PLAIN\r\nAGZvbwBiYXI=\r\n*\r\n")
    assert f.next_event() == FramedCommand(b"a1 IDLE")
    f.expect_line()
    assert f.next_event() == RawLine(b"DONE")
    assert f.next_event() == FramedCommand(b"a2 AUTHENTICATE PLAIN")
    f.expect_line()
    assert f.next_event() == RawLine(b"AGZvbwBiYXI=")
    f.expect_line()
    assert f.next_event() == RawLine(b"*")
    assert f.next_event() is None
    f.expect_line()
    assert f.feed(b"{5}") == [] and f.feed(b"\r\n") == [RawLine(b"{5}")]  # no literal processing
    f = CommandFramer(max_line=8)
    f.expect_line()
    assert f.feed(b"x" * 20 + b"\r\na NOOP\r\n") == [
        FramingError(None, "Line too long (max_line is 8 octets)", "max_line"), FramedCommand(b"a NOOP")
    ]


# --- properties ---------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_parse_error(raw: bytes) -> None:
    try:
        parse_command(raw)
    except ParseError as e:
        assert e.response().endswith(b"\r\n") and b"\n" not in e.response()[:-2]


_VERBS = [b"FETCH 1:* ", b"UID FETCH ", b"SEARCH ", b"STORE 1 ", b"LIST ", b"APPEND x ", b"SELECT ", b"LOGIN ",
          b"STATUS x ", b"UID SEARCH CHARSET UTF-8 ", b"ID ", b"COPY 1 "]  # fmt: skip
_PIECES = [b"(", b")", b" ", b'"', b"\\", b"{3}\r\n", b"{2+}\r\n", b"[", b"]", b"<", b">", b".", b"*", b"1", b"0",
           b"BODY", b"PEEK", b"HEADER.FIELDS", b"NOT", b"OR", b"FLAGS", b"\\Seen", b"NIL", b"$", b":", b",",
           b"\x00", b"\xff", b"MIME", b"CHANGEDSINCE", b"RETURN", b"-Feb-1994", b"&", b"-"]  # fmt: skip


@SETTINGS
@given(st.sampled_from(_VERBS), st.lists(st.sampled_from(_PIECES), max_size=25))
def test_near_valid_commands_only_raise_parse_error(verb: bytes, pieces: list[bytes]) -> None:
    try:
        cmd = parse_command(b"t1 " + verb + b"".join(pieces))
    except ParseError as e:
        assert e.tag == "t1" and b"\n" not in e.response()[:-2]
    else:
        assert cmd.tag == "t1"


# Generated commands: build the typed value, serialise it here, parse it back.

_ATOM_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '(){%*"\\]')
atoms = st.text(_ATOM_CHARS, min_size=1, max_size=8)
texts = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
numbers = st.integers(1, 2**32 - 1)
modseqs = st.integers(1, 2**63 - 1)
seqsets = st.one_of(
    st.just(SequenceSet(saved=True)),
    st.lists(st.tuples(st.one_of(st.none(), numbers), st.one_of(st.none(), numbers)), min_size=1, max_size=4).map(SequenceSet),
)
system_flags = st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"])
flags = st.one_of(system_flags, atoms.filter(lambda a: not a.startswith("\\")))
mailboxes = texts.map(lambda t: "INBOX" if t.upper() == "INBOX" else t)
zones = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
date_times = st.datetimes(datetime(1000, 1, 1), datetime(9999, 1, 1), timezones=zones).map(lambda d: d.replace(microsecond=0))
dates = st.dates(date(1000, 1, 1), date(9999, 12, 31))
field_names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789", min_size=1, max_size=10)


def q(value: str | bytes) -> bytes:
    return quote_astring(value)


def wire_date(d: date) -> bytes:
    return f"{d.day}-{'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()[d.month - 1]}-{d.year:04d}".encode()


search_leaves = st.one_of(
    st.sampled_from("ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN".split()).map(SearchKey),
    st.builds(lambda op, t: SearchKey(op, (t,)), st.sampled_from("BCC BODY CC FROM SUBJECT TEXT TO".split()), texts),
    st.builds(lambda op, d: SearchKey(op, (d,)), st.sampled_from("BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE".split()), dates),
    st.builds(lambda op, n: SearchKey(op, (n,)), st.sampled_from(["LARGER", "SMALLER", "OLDER", "YOUNGER"]), numbers),
    st.builds(lambda op, s: SearchKey(op, (s,)), st.sampled_from(["UID", "SEQ"]), seqsets),
    st.builds(lambda op, f: SearchKey(op, (f,)), st.sampled_from(["KEYWORD", "UNKEYWORD"]), flags),
    st.builds(lambda f, t: SearchKey("HEADER", (f, t)), field_names, texts),
    st.builds(lambda n: SearchKey("MODSEQ", (n, None, None)), modseqs),
    st.builds(lambda n, f, k: SearchKey("MODSEQ", (n, "/flags/" + f, k)), modseqs, atoms, st.sampled_from(["priv", "shared", "all"])),
)  # fmt: skip
search_keys = st.recursive(
    search_leaves,
    lambda k: st.one_of(
        k.map(lambda x: SearchKey("NOT", (x,))),
        st.tuples(k, k).map(lambda t: SearchKey("OR", t)),
        st.lists(k, min_size=2, max_size=3).map(lambda ks: SearchKey("AND", tuple(ks))),
    ),
    max_leaves=8,
)


def ser_key(k: SearchKey) -> bytes:
    a = k.args
    if k.op == "AND":
        return b"(" + b" ".join(map(ser_key, a)) + b")"
    if k.op == "SEQ":
        return a[0].to_bytes()
    if k.op in ("NOT", "OR"):
        return k.op.encode() + b" " + b" ".join(map(ser_key, a))
    if k.op == "MODSEQ":
        entry = b"" if a[1] is None else quote_string(a[1]) + b" " + a[2].encode() + b" "
        return b"MODSEQ " + entry + str(a[0]).encode()
    out = [k.op.encode()]
    for v in a:
        if isinstance(v, date):
            out.append(wire_date(v))
        elif isinstance(v, SequenceSet):
            out.append(v.to_bytes())
        elif isinstance(v, int):
            out.append(str(v).encode())
        else:
            out.append(v.encode() if k.op.endswith("KEYWORD") else q(v))
    return b" ".join(out)


def section_strategy():
    part = st.lists(st.integers(1, 30), max_size=3).map(tuple)
    return st.one_of(
        part.map(Section),
        st.builds(lambda p, t: Section(p, t), part, st.sampled_from(["HEADER", "TEXT"])),
        st.builds(lambda p: Section(p, "MIME"), part.filter(bool)),
        st.builds(lambda p, t, f: Section(p, t, tuple(f)), part, st.sampled_from(["HEADER.FIELDS", "HEADER.FIELDS.NOT"]),
                  st.lists(field_names, min_size=1, max_size=3)),
    )  # fmt: skip


partials = st.one_of(st.none(), st.tuples(st.integers(0, 2**32 - 1), numbers))
fetch_atts = st.one_of(
    st.sampled_from("ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODYSTRUCTURE UID MODSEQ BODY".split()).map(FetchAtt),
    st.builds(lambda s, p, k: FetchAtt("BODY", s, p, k), section_strategy(), partials, st.booleans()),
    st.builds(lambda s, p, k: FetchAtt("BINARY", Section(s), p, k), st.lists(st.integers(1, 9), max_size=3).map(tuple), partials, st.booleans()),
    st.builds(lambda s: FetchAtt("BINARY.SIZE", Section(s)), st.lists(st.integers(1, 9), max_size=3).map(tuple)),
)  # fmt: skip


def ser_att(a: FetchAtt) -> bytes:
    if a.section is None:
        return a.name.encode()
    name = a.name + (".PEEK" if a.peek else "")
    out = f"{name}[{a.section.spec()}]"
    if a.partial:
        out += f"<{a.partial[0]}.{a.partial[1]}>"
    return out.encode()


def ser_flags(fs) -> bytes:
    return b"(" + " ".join(fs).encode() + b")"


@st.composite
def commands(draw) -> tuple[Command, bytes]:
    tag = draw(st.text(_ATOM_CHARS.replace("+", "") + "]", min_size=1, max_size=6))
    kind = draw(st.sampled_from([
        "noargs", "login", "select", "create", "mailbox", "rename", "list", "lsub", "status", "append",
        "search", "fetch", "store", "copy", "expunge", "enable", "id", "authenticate", "getquota",
    ]))  # fmt: skip
    uid = False
    if kind == "noargs":
        name = draw(st.sampled_from("CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE EXPUNGE IDLE UNSELECT NAMESPACE".split()))
        return Command(tag, name), f"{tag} {name.lower()}".encode()
    if kind == "login":
        a = Login(draw(texts), draw(texts))
        return Command(tag, "LOGIN", a), f"{tag} LOGIN ".encode() + q(a.username) + b" " + q(a.password)
    if kind == "select":
        name = draw(st.sampled_from(["SELECT", "EXAMINE"]))
        a = Select(draw(mailboxes), draw(st.booleans()))
        suffix = b" (CONDSTORE)" if a.condstore else b""
        return Command(tag, name, a), f"{tag} {name} ".encode() + format_mailbox(a.mailbox) + suffix
    if kind == "create":
        a = Create(draw(mailboxes), tuple(draw(st.lists(st.sampled_from(["\\Sent", "\\Trash", "\\Junk"]), max_size=2))))
        suffix = b" (USE " + ser_flags(a.special_use) + b")" if a.special_use else b""
        return Command(tag, "CREATE", a), f"{tag} CREATE ".encode() + format_mailbox(a.mailbox) + suffix
    if kind == "mailbox":
        name = draw(st.sampled_from(["DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT"]))
        a = MailboxArgs(draw(mailboxes))
        return Command(tag, name, a), f"{tag} {name} ".encode() + format_mailbox(a.mailbox)
    if kind == "rename":
        a = Rename(draw(mailboxes), draw(mailboxes))
        return Command(tag, "RENAME", a), f"{tag} RENAME ".encode() + format_mailbox(a.old) + b" " + format_mailbox(a.new)
    if kind in ("list", "lsub"):
        ref, pats = draw(texts), tuple(draw(st.lists(texts, min_size=1, max_size=3)))
        if kind == "lsub":
            a = List(ref, pats[:1])
            return Command(tag, "LSUB", a), f"{tag} LSUB ".encode() + format_mailbox(ref) + b" " + format_mailbox(pats[0])
        sel = tuple(draw(st.lists(st.sampled_from(["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH"]), max_size=2)))
        if "RECURSIVEMATCH" in sel and "SUBSCRIBED" not in sel:   # alone it is BAD (RFC 5258)
            sel += ("SUBSCRIBED",)
        ret = tuple(draw(st.lists(st.sampled_from(["CHILDREN", "SUBSCRIBED", "SPECIAL-USE"]), max_size=2)))
        a = List(ref, pats, sel, ret, (), bool(sel or ret or len(pats) > 1))
        raw = f"{tag} LIST ".encode() + (ser_flags(sel) + b" " if sel else b"") + format_mailbox(ref) + b" "
        raw += b"(" + b" ".join(map(format_mailbox, pats)) + b")" if len(pats) > 1 else format_mailbox(pats[0])
        if ret:
            raw += b" RETURN " + ser_flags(ret)
        if not (sel or ret or len(pats) > 1) and draw(st.booleans()):
            raw = raw.replace(b" LIST ", b" LIST () ", 1)
            a = List(ref, pats, (), (), (), True)
        return Command(tag, "LIST", a), raw
    if kind == "status":
        items = tuple(draw(st.lists(st.sampled_from(["MESSAGES", "UIDNEXT", "UNSEEN", "HIGHESTMODSEQ", "SIZE"]), min_size=1, max_size=4)))
        a = Status(draw(mailboxes), items)
        return Command(tag, "STATUS", a), f"{tag} STATUS ".encode() + format_mailbox(a.mailbox) + b" " + ser_flags(items)
    if kind == "append":
        msgs = draw(st.lists(st.builds(AppendMessage, st.binary(max_size=40), st.lists(flags, max_size=3).map(tuple),
                                       st.one_of(st.none(), date_times), st.booleans()), min_size=1, max_size=3))  # fmt: skip
        a = Append(draw(mailboxes), tuple(msgs))
        raw = f"{tag} APPEND ".encode() + format_mailbox(a.mailbox)
        for m in msgs:
            if m.flags or draw(st.booleans()):
                raw += b" " + ser_flags(m.flags)
            if m.date_time:
                raw += b" " + imap_date(m.date_time)
            plus = b"+" if draw(st.booleans()) else b""
            raw += b" " + (b"~" if m.binary else b"") + b"{%d%s}\r\n" % (len(m.message), plus) + m.message
        return Command(tag, "APPEND", a), raw
    if kind == "search":
        uid = draw(st.booleans())
        key = draw(search_keys)
        charset = draw(st.sampled_from([None, "UTF-8", "US-ASCII"]))
        ret = draw(st.one_of(st.none(), st.lists(st.sampled_from(["MIN", "MAX", "ALL", "COUNT", "SAVE"]), max_size=3).map(tuple)))
        raw = f"{tag} {'UID ' if uid else ''}SEARCH ".encode()
        if ret is not None:
            raw += b"RETURN " + ser_flags(ret) + b" "
        if charset:
            raw += b"CHARSET " + charset.encode() + b" "
        return Command(tag, "SEARCH", Search(key, charset, ret), uid), raw + ser_key(key)
    if kind == "fetch":
        uid = draw(st.booleans())
        a = Fetch(draw(seqsets), tuple(draw(st.lists(fetch_atts, min_size=1, max_size=4))), draw(st.one_of(st.none(), modseqs)))
        if uid and a.changedsince is not None and draw(st.booleans()):
            a = Fetch(a.seqset, a.items, a.changedsince, True)
        items = b" ".join(map(ser_att, a.items))
        raw = f"{tag} {'UID ' if uid else ''}FETCH ".encode() + a.seqset.to_bytes() + b" "
        raw += items if len(a.items) == 1 and draw(st.booleans()) else b"(" + items + b")"
        if a.changedsince is not None:
            raw += b" (CHANGEDSINCE %d%s)" % (a.changedsince, b" VANISHED" if a.vanished else b"")
        return Command(tag, "FETCH", a, uid), raw
    if kind == "store":
        uid = draw(st.booleans())
        fl = tuple(draw(st.lists(flags, max_size=4)))
        a = Store(draw(seqsets), draw(st.sampled_from(["", "+", "-"])), draw(st.booleans()), fl, draw(st.one_of(st.none(), st.integers(0, 2**63 - 1))))
        raw = f"{tag} {'UID ' if uid else ''}STORE ".encode() + a.seqset.to_bytes() + b" "
        if a.unchangedsince is not None:
            raw += b"(UNCHANGEDSINCE %d) " % a.unchangedsince
        raw += f"{a.mode}FLAGS{'.SILENT' if a.silent else ''} ".encode()
        raw += " ".join(fl).encode() if fl and draw(st.booleans()) else ser_flags(fl)
        return Command(tag, "STORE", a, uid), raw
    if kind == "copy":
        uid = draw(st.booleans())
        name = draw(st.sampled_from(["COPY", "MOVE"]))
        a = Copy(draw(seqsets), draw(mailboxes))
        raw = f"{tag} {'UID ' if uid else ''}{name} ".encode() + a.seqset.to_bytes() + b" " + format_mailbox(a.mailbox)
        return Command(tag, name, a, uid), raw
    if kind == "expunge":
        a = Expunge(draw(seqsets))
        return Command(tag, "EXPUNGE", a, True), f"{tag} UID EXPUNGE ".encode() + a.seqset.to_bytes()
    if kind == "enable":
        caps = tuple(draw(st.lists(atoms.map(str.upper), min_size=1, max_size=3)))
        return Command(tag, "ENABLE", Enable(caps)), f"{tag} ENABLE {' '.join(caps)}".encode()
    if kind == "id":
        params = draw(st.one_of(st.none(), st.lists(st.tuples(texts, st.one_of(st.none(), texts)), max_size=3).map(tuple)))
        if params is None:
            return Command(tag, "ID", Id(None)), f"{tag} ID NIL".encode()
        body = b" ".join(quote_string(k) + b" " + nstring(v) for k, v in params)
        return Command(tag, "ID", Id(params)), f"{tag} ID (".encode() + body + b")"
    if kind == "authenticate":
        mech = draw(atoms).upper()
        ir = draw(st.one_of(st.none(), st.binary(max_size=20)))
        raw = f"{tag} AUTHENTICATE {mech}".encode()
        if ir is not None:
            raw += b" " + (base64.b64encode(ir) or b"=")
        return Command(tag, "AUTHENTICATE", Authenticate(mech, ir)), raw
    root = draw(texts)
    return Command(tag, "GETQUOTA", GetQuota(root)), f"{tag} GETQUOTA ".encode() + q(root)


@SETTINGS
@given(commands(), st.data())
def test_generated_commands_round_trip_through_framer_and_parser(pair, data) -> None:
    cmd, wire = pair
    assert parse_command(wire) == cmd
    stream = wire + b"\r\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    events = feed_all(CommandFramer(), chunks)
    assert events[-1] == FramedCommand(wire)
    assert all(isinstance(e, ContinuationNeeded) for e in events[:-1])


stream_parts = st.lists(
    st.one_of(
        st.sampled_from([b"a NOOP\r\n", b"b LOGIN {3}\r\nabc def\r\n", b"c X {2+}\r\n\r\n\r\n", b"\r\n", b"\n",
                         b"d " + b"x" * 40 + b"\r\n", b"e A {99}\r\n", b"f B {99+}\r\n", b"g ~{1}\r\n\x00 y\n",
                         b"{5}\r\n", b"\r", b"h " + b"y" * 30 + b" {3+}\r\nabc\r\n"]),  # fmt: skip
        st.binary(max_size=20),
    ),
    max_size=12,
)


@SETTINGS
@given(stream_parts, st.data())
def test_framer_is_chunking_independent(parts, data) -> None:
    stream = b"".join(parts)
    reference = CommandFramer(max_line=32, max_literal=50, max_command=80).feed(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    assert feed_all(CommandFramer(max_line=32, max_literal=50, max_command=80), chunks) == reference
    one_by_one = CommandFramer(max_line=32, max_literal=50, max_command=80)
    assert feed_all(one_by_one, [stream[i : i + 1] for i in range(len(stream))]) == reference
    for ev in reference:
        if isinstance(ev, FramedCommand):
            try:
                parse_command(ev.raw)
            except ParseError:
                pass
