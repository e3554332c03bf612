"""MIME summaries: RFC 3501's examples, real shapes, broken mail, and fuzzing.

The rendered BODYSTRUCTURE and ENVELOPE are checked byte for byte against the
RFC where it gives them, and otherwise read back with a small IMAP
s-expression reader so a syntax slip anywhere shows up.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coremail.mail.envelope import decode_words, parse_addresses
from coremail.mail.mime import (
    MAX_DEPTH,
    attachments,
    binary_to_base64,
    decoded_body,
    find_part,
    normalize_crlf,
    part_filename,
    qp_decode,
    render_bodystructure,
    render_envelope,
    section_bytes,
    summarize,
)
from coremail.mail.mime import _summarize as summarize_unguarded

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def body_of(size: int, lines: int, char: bytes = b"a") -> bytes:
    """``lines`` CRLF-terminated lines of exactly ``size`` octets in all."""
    q, r = divmod(size - 2 * lines, lines)
    return b"".join(char * (q + (i < r)) + b"\r\n" for i in range(lines))


def read_sexp(data: bytes):
    """Read one IMAP parenthesised value; returns (value, rest)."""
    data = data.lstrip(b" ")
    if data.startswith(b"("):
        items, data = [], data[1:]
        while not data.lstrip(b" ").startswith(b")"):
            if not data.strip():
                raise ValueError("unbalanced")
            item, data = read_sexp(data)
            items.append(item)
        return items, data.lstrip(b" ")[1:]
    if data.startswith(b'"'):
        m = re.match(rb'"((?:[^"\\\r\n]|\\["\\])*)"', data)
        return re.sub(rb"\\(.)", rb"\1", m.group(1)), data[m.end() :]
    m = re.match(rb"\{(\d+)\}\r\n", data)
    if m:
        n = int(m.group(1))
        return data[m.end() : m.end() + n], data[m.end() + n :]
    m = re.match(rb"[^ ()\"{]+", data)
    if not m:
        raise ValueError(f"unexpected {data[:10]!r}")
    atom = m.group()
    return (None if atom == b"NIL" else int(atom) if atom.isdigit() else atom), data[m.end() :]


def read_all(data: bytes):
    value, rest = read_sexp(data)
    assert rest == b"", rest
    return value


# --- RFC 3501 ----------------------------------------------------------------

RFC_HEADER = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
)


def test_rfc3501_section8_envelope_and_body() -> None:
    raw = RFC_HEADER + b"\r\n" + body_of(3028, 92)
    s = summarize(raw)
    assert render_envelope(s["envelope"]) == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) '
        # the RFC's example puts a space between addresses; its grammar, "(" 1*address ")", does not
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
        b'"<B27397-0100000@cac.washington.edu>")'
    )
    assert render_bodystructure(s, False) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
    assert render_bodystructure(s) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)'
    assert s["size"] == len(raw) and s["subject"] == "IMAP4rev1 WG mtg summary and minutes"
    assert s["from_display"] == "Terry Gray" and s["date_epoch"] == 837595405 and not s["has_attachment"]
    assert section_bytes(raw, s, "") == raw
    assert section_bytes(raw, s, "1") == raw[len(RFC_HEADER) + 2 :]
    assert section_bytes(raw, s, "TEXT") == raw[len(RFC_HEADER) + 2 :]
    assert section_bytes(raw, s, "HEADER") == RFC_HEADER + b"\r\n"
    assert section_bytes(raw, s, "2") is None


def test_rfc3501_bodystructure_multipart_example() -> None:
    raw = (
        b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
        b"--=_b\r\n\r\n" + body_of(1152, 23) +
        b"\r\n--=_b\r\nContent-Type: text/plain; charset=US-ASCII; name=cc.diff\r\n"
        b"Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
        b"Content-Description: Compiler diff\r\nContent-Transfer-Encoding: BASE64\r\n\r\n"
        + body_of(4554, 73, b"Q") + b"\r\n--=_b--\r\n"
    )  # fmt: skip
    s = summarize(raw)
    assert render_bodystructure(s, extensible=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" '
        b'"Compiler diff" "BASE64" 4554 73) "MIXED")'
    )
    assert render_bodystructure(s).endswith(b' "MIXED" ("BOUNDARY" "=_b") NIL NIL NIL)')
    assert section_bytes(raw, s, "1") == body_of(1152, 23)
    assert section_bytes(raw, s, "2") == body_of(4554, 73, b"Q")
    assert section_bytes(raw, s, "2.MIME").startswith(b"Content-Type: text/plain") and section_bytes(raw, s, "2.MIME").endswith(b"BASE64\r\n\r\n")
    assert section_bytes(raw, s, "1.MIME") == b"\r\n"
    assert s["has_attachment"]  # it has a name
    assert attachments(s) == [{"part": "2", "filename": "cc.diff", "type": "text/plain", "size": 4554}]


# --- realistic shapes -----------------------------------------------------------

MIXED = (
    b"Return-Path: <fred@example.test>\r\n"
    b"From: \"Fred, Jr.\" <fred@example.test>\r\n"
    b"To: Team: ann@example.test, \"Bob B\" <bob@example.test>;, carl@example.test\r\n"
    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus\r\n =?ISO-8859-1?B?S/Zsbg==?=\r\n"
    b"Date: Tue, 5 Mar 2024 10:00:00 +0100\r\n"
    b"Message-ID: <m1@example.test>\r\nIn-Reply-To: <m0@example.test>\r\n"
    b"Content-Type: multipart/mixed;\r\n boundary=\"outer\"\r\n\r\n"
    b"This is a MIME message.\r\n"
    b"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe\r\n"
    b"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hi</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\nContent-Type: application/pdf; name=\"=?UTF-8?Q?Pr=C3=BCfung.pdf?=\"\r\n"
    b"Content-Disposition: attachment;\r\n filename*0*=UTF-8''Pr%C3%BC;\r\n filename*1=fung.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Language: de, en\r\nContent-Location: http://x.test/p\r\n\r\n"
    b"JVBERi0xLjQK\r\nJSVFT0Y=\r\n"
    b"--outer--\r\nepilogue\r\n"
)


def test_multipart_mixed_with_attachment() -> None:
    s = summarize(MIXED)
    body = s["body"]
    assert (body["type"], body["subtype"]) == ("multipart", "mixed")
    alt, pdf = body["parts"]
    assert [p["subtype"] for p in alt["parts"]] == ["plain", "html"]
    assert pdf["disposition"][0] == "attachment" and pdf["language"] == ["de", "en"]
    assert part_filename(pdf) == "Prüfung.pdf"
    assert attachments(s) == [{"part": "2", "filename": "Prüfung.pdf", "type": "application/pdf", "size": 22}]
    assert s["has_attachment"] and s["subject"] == "Grüße aus Köln"
    assert s["envelope"]["subject"] == "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus =?ISO-8859-1?B?S/Zsbg==?="
    assert s["from_display"] == "Fred, Jr." and s["date_epoch"] == 1709629200
    assert s["envelope"]["to"] == [
        [None, None, "Team", None], [None, None, "ann", "example.test"], ["Bob B", None, "bob", "example.test"],
        [None, None, None, None], [None, None, "carl", "example.test"],
    ]  # fmt: skip
    assert section_bytes(MIXED, s, "1.1") == b"Gr=C3=BC=C3=9Fe"
    assert decoded_body(MIXED, s, (1, 1)) == "Grüße".encode()
    assert decoded_body(MIXED, s, (2,)) == b"%PDF-1.4\n%%EOF"
    assert section_bytes(MIXED, s, "1.2") == b"<p>Hi</p>"
    assert section_bytes(MIXED, s, "1.2.MIME") == b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert section_bytes(MIXED, s, "1.3") is None and section_bytes(MIXED, s, "3") is None
    assert section_bytes(MIXED, s, "2.HEADER") == b""  # not a message/rfc822 part
    bs = read_all(render_bodystructure(s))
    assert bs[-5:] == [b"MIXED", [b"BOUNDARY", b"outer"], None, None, None]
    assert bs[1][:7] == [b"APPLICATION", b"PDF", [b"NAME", b"=?UTF-8?Q?Pr=C3=BCfung.pdf?="], None, None, b"BASE64", 22]
    assert bs[1][7:] == [None, [b"ATTACHMENT", [b"FILENAME*0*", b"UTF-8''Pr%C3%BC", b"FILENAME*1", b"fung.pdf"]],
                         [b"de", b"en"], b"http://x.test/p"]  # fmt: skip


def test_header_fields_sections() -> None:
    s = summarize(MIXED)
    got = section_bytes(MIXED, s, "HEADER.FIELDS (subject TO Nope)")
    assert got == (
        b"To: Team: ann@example.test, \"Bob B\" <bob@example.test>;, carl@example.test\r\n"
        b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus\r\n =?ISO-8859-1?B?S/Zsbg==?=\r\n\r\n"
    )
    assert section_bytes(MIXED, s, "HEADER.FIELDS (X-NONE)") == b"\r\n"
    nots = section_bytes(MIXED, s, "HEADER.FIELDS.NOT (Content-Type RETURN-PATH from to subject date)")
    assert nots == b"Message-ID: <m1@example.test>\r\nIn-Reply-To: <m0@example.test>\r\n\r\n"

    class Spec:  # what the IMAP parser hands over
        part, text, fields = (), "HEADER.FIELDS", ("MESSAGE-ID",)

    assert section_bytes(MIXED, s, Spec()) == b"Message-ID: <m1@example.test>\r\n\r\n"


NESTED = (
    b"From: list@example.test\r\nSubject: digest\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
    b"--X\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
    b"--X\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
    b"From: Ann <ann@example.test>\r\nSubject: inner\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Content-Type: multipart/alternative; boundary=Y\r\n\r\n"
    b"--Y\r\n\r\nplain body\r\n--Y\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--Y--\r\n"
    b"--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: simple\r\n\r\njust text\r\n"
    b"--X--\r\n"
)


def test_nested_message_rfc822() -> None:
    s = summarize(NESTED)
    msg = s["body"]["parts"][1]
    assert msg["envelope"]["subject"] == "inner" and msg["message"]["subtype"] == "alternative"
    tree = read_all(render_bodystructure(s))
    inner = tree[1]
    assert inner[:6] == [b"MESSAGE", b"RFC822", None, None, None, b"7BIT"]
    assert inner[7][1] == b"inner" and inner[7][2] == [[b"Ann", None, b"ann", b"example.test"]]
    assert inner[8][-5] == b"ALTERNATIVE" and inner[9] == 13  # lines of the encapsulated message
    assert read_all(render_bodystructure(s, False))[1][8][-1] == b"ALTERNATIVE"
    assert section_bytes(NESTED, s, "2.HEADER").startswith(b"From: Ann") and section_bytes(NESTED, s, "2.HEADER").endswith(b"boundary=Y\r\n\r\n")
    assert section_bytes(NESTED, s, "2.TEXT").startswith(b"--Y\r\n") and section_bytes(NESTED, s, "2.TEXT").endswith(b"</b>\r\n--Y--")
    assert section_bytes(NESTED, s, "2").startswith(b"From: Ann") and section_bytes(NESTED, s, "2.MIME").endswith(b"inline\r\n\r\n")
    assert section_bytes(NESTED, s, "2.1") == b"plain body"
    assert section_bytes(NESTED, s, "2.2") == b"<b>html</b>"
    assert section_bytes(NESTED, s, "2.2.MIME") == b"Content-Type: text/html\r\n\r\n"
    assert section_bytes(NESTED, s, "2.HEADER.FIELDS (SUBJECT)") == b"Subject: inner\r\n\r\n"
    assert section_bytes(NESTED, s, "3.1") == b"just text"  # single-part message: 3.1 is its body
    assert section_bytes(NESTED, s, "3.TEXT") == b"just text"
    assert section_bytes(NESTED, s, "2.3") is None and find_part(s, (2, 2))["subtype"] == "html"
    assert [a["part"] for a in attachments(s)] == ["2", "3"]


def test_digest_defaults_to_message_rfc822() -> None:
    raw = (b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody 1\r\n"
           b"--d\r\nContent-Type: text/plain\r\n\r\nnote\r\n--d--\r\n")  # fmt: skip
    s = summarize(raw)
    first, second = s["body"]["parts"]
    assert (first["type"], first["subtype"], first["envelope"]["subject"]) == ("message", "rfc822", "one")
    assert second["type"] == "text"
    read_all(render_bodystructure(s))


def test_utf8_headers_and_literals() -> None:
    raw = "Subject: Grüße aus Köln\r\nFrom: Jörg Müller <jörg@exämple.test>\r\n\r\nHallo\r\n".encode()
    s = summarize(raw)
    assert s["subject"] == "Grüße aus Köln" and s["from_display"] == "Jörg Müller"
    env = render_envelope(s["envelope"])
    assert b"{17}\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln" in env
    assert read_all(env)[2] == [["Jörg Müller".encode(), None, "jörg".encode(), "exämple.test".encode()]]
    latin = summarize(b"Subject: caf\xe9\r\n\r\n")
    assert latin["subject"] == "café"  # not UTF-8: kept octet for octet as Latin-1
    assert json.loads(json.dumps(latin)) == latin


def test_envelope_details() -> None:
    raw = (b"From: a@x.test\r\nSender: \r\nReply-To: r@x.test\r\nBcc: undisclosed-recipients:;\r\n"
           b"Subject: \"quoted\" \\ back\r\nIn-Reply-To: <p@x>\r\n\r\n")  # fmt: skip
    env = read_all(render_envelope(summarize(raw)["envelope"]))
    assert env[0] is None and env[1] == b'"quoted" \\ back'
    assert env[3] == [[None, None, b"a", b"x.test"]]  # empty Sender: From is used
    assert env[4] == [[None, None, b"r", b"x.test"]]
    assert env[7] == [[None, None, b"undisclosed-recipients", None], [None, None, None, None]]
    assert env[8] == b"<p@x>" and env[9] is None
    assert render_envelope({}) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", [["Pete", None, "pete", "silly.test"]]),
        ("<@a.test,@b.test:joe@c.test>", [[None, "@a.test,@b.test", "joe", "c.test"]]),
        ("gray@cac.washington.edu (Terry Gray)", [["Terry Gray", None, "gray", "cac.washington.edu"]]),
        ('"joe q. public"@x.test', [[None, None, '"joe q. public"', "x.test"]]),
        ("=?utf-8?q?J=C3=B6rg?= <j@x.de>", [["=?utf-8?q?J=C3=B6rg?=", None, "j", "x.de"]]),
        ("Mary Smith <mary@[192.0.2.1]>", [["Mary Smith", None, "mary", "[192.0.2.1]"]]),
        ("localonly", [[None, None, "localonly", ""]]),
        ("<>", []),
        ("", []),
    ],
)
def test_address_lists(value: str, expected: list) -> None:
    assert parse_addresses(value) == expected


def test_decode_words() -> None:
    assert decode_words("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=") == "ab"
    assert decode_words("=?utf-8?B?w7Y=?= x =?utf-8*de?q?=C3=A4?=") == "ö x ä"
    assert decode_words("=?x-unknown?q?hi_there?=") == "hi there"
    assert decode_words("=?utf-8?b?!!!?=") in ("=?utf-8?b?!!!?=", "")
    assert decode_words(None) == "" and decode_words("plain") == "plain"
    assert decode_words("=?utf-7?q?+2D0-?=") == "?"  # a lone surrogate would break JSON stores
    assert decode_words("=?idna?q?x?=") == "x"


# --- broken mail --------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"no header at all, just text",
        b"Subject: x\r\nbody without a blank line\r\n",
        b"Subject: only a header",
        b" leading continuation\r\n\r\nbody",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter\r\n",
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nthe boundary never appears\r\n",
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\nunclosed part\r\n",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n",
        b"Content-Type: text/plain; charset=\"unterminated\r\n\r\nx",
        b"Content-Type: garbage\r\nContent-Transfer-Encoding: \r\n\r\nx",
        b"Content-Type: text/plain; =; ;;x=\"a\\\"b\"; (comment) y = z\r\n\r\nx",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==\r\n",
        b"Subject: \xff\xfe\x00bad\r\nFrom: \x80\x81 <@>\r\n\r\n\xff\x00\x01",
        b"From: a\nTo: b\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nlf only\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--bx\r\n--b \t\r\nX: y\r\n\r\nz\r\n--b--junk\r\n",
        b"Content-Disposition: ;filename=x\r\nContent-Language: ,\r\n\r\n",
        b"Date: not a date\r\n\r\n",
        b"Date: Mon, 32 Foo 99999999999 99:99:99 +9999\r\n\r\n",
    ],
)
def test_broken_messages_degrade(raw: bytes) -> None:
    s = summarize_unguarded(raw)
    check_summary(raw, s)
    assert json.loads(json.dumps(s)) == s
    body = s["body"]
    if b"multipart" in raw and "parts" not in body:
        assert (body["type"], body["subtype"]) == ("text", "plain")


def test_broken_specifics() -> None:
    s = summarize(b"Subject: x\r\nbody without a blank line\r\n")
    assert s["envelope"]["subject"] == "x"
    assert section_bytes(b"Subject: x\r\nbody without a blank line\r\n", s, "TEXT") == b"body without a blank line\r\n"
    assert section_bytes(b"Subject: x\r\nbody without a blank line\r\n", s, "HEADER") == b"Subject: x\r\n\r\n"
    assert section_bytes(b"Subject: only a header", summarize(b"Subject: only a header"), "HEADER") == b"Subject: only a header\r\n\r\n"
    raw = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\nunclosed part\r\n"
    s = summarize(raw)
    assert section_bytes(raw, s, "1") == b"unclosed part\r\n"
    raw = b"From: a\nTo: b\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nlf only\n--b--\n"
    s = summarize(raw)
    assert section_bytes(raw, s, "1") == b"lf only" and s["body"]["parts"][0]["lines"] == 1
    assert section_bytes(raw, s, "HEADER.FIELDS (TO)") == b"To: b\n\r\n"
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--bx\r\n--b \t\r\nX: y\r\n\r\nz\r\n--b--junk\r\n"
    assert section_bytes(raw, summarize(raw), "1") == b"z\r\n--b--junk\r\n"  # "--bx" and "--b--junk" are no delimiters
    assert summarize(b"Content-Type: garbage\r\n\r\nx")["body"]["params"] == [["charset", "US-ASCII"]]
    assert summarize(b"Content-Type: Text / HTML (comment)\r\n\r\nx")["body"]["subtype"] == "html"
    assert summarize(b"Date: not a date\r\n\r\n")["date_epoch"] is None


def test_depth_and_part_limits() -> None:
    raw = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(MAX_DEPTH + 10))
    s = summarize_unguarded(raw)
    check_summary(raw, s)
    depth, node = 0, s["body"]
    while "parts" in node:
        depth, node = depth + 1, node["parts"][0]
    assert depth == MAX_DEPTH
    many = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\n" * 3000 + b"--b--\r\n"
    s = summarize_unguarded(many)
    assert len(s["body"]["parts"]) == 1000
    nested = b"Content-Type: message/rfc822\r\n\r\n" * 200
    check_summary(nested, summarize_unguarded(nested))


def test_normalize_crlf() -> None:
    assert normalize_crlf(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd"
    assert normalize_crlf(b"a\nb\n") == b"a\r\nb\r\n"
    assert normalize_crlf(b"a\r\n") == b"a\r\n"


def test_rfc2231_and_names() -> None:
    node = {"type": "image", "subtype": "png", "params": [["name", "=?utf-8?q?b=C3=A4r.png?="]]}
    assert part_filename(node) == "bär.png"
    node = {"disposition": ["attachment", [["filename*", "iso-8859-1'en'caf%E9.txt"]]]}
    assert part_filename(node) == "café.txt"
    node = {"disposition": ["attachment", [["filename*", "bogus-cs''x%41"]]]}
    assert part_filename(node) == "xA"
    assert part_filename({"type": "text"}) is None
    assert part_filename({"disposition": ["attachment", [["filename*", "utf-7''%2B%32%44%30%2D"]]]}) == "?"
    assert part_filename({"disposition": ["attachment", [["filename*", "idna''%E9"]]]}) == "\ufffd"


# --- properties -----------------------------------------------------------------


def check_summary(raw: bytes, s: dict) -> None:
    """Offsets in bounds and nested, and every rendering readable."""
    n = len(raw)

    def walk(node: dict, lo: int, hi: int, path: tuple[int, ...]) -> None:
        assert lo <= node["hs"] <= node["he"] <= node["bs"] <= node["be"] <= hi, node
        assert node["type"] and node["subtype"]
        if node["type"] == "multipart":
            assert node["parts"]
        for i, child in enumerate(node.get("parts", ()), 1):
            walk(child, node["bs"], node["be"], path + (i,))
        if "message" in node:
            walk(node["message"], node["bs"], node["be"], path)
        for spec in ("", "MIME", "HEADER", "TEXT", "HEADER.FIELDS (SUBJECT FROM)", "HEADER.FIELDS.NOT (TO)"):
            part = ".".join(map(str, path))
            full = f"{part}.{spec}" if part and spec else part or spec
            out = section_bytes(raw, s, full)
            assert out is None or isinstance(out, bytes)
        decoded_body(raw, s, path)

    walk(s["body"], 0, n, ())
    assert s["size"] == n
    read_all(render_bodystructure(s))
    read_all(render_bodystructure(s, False))
    read_all(render_envelope(s["envelope"]))
    assert isinstance(s["subject"], str) and isinstance(s["has_attachment"], bool)
    assert json.loads(json.dumps(s)) == s
    text = json.dumps(s, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates, no NULs: PostgreSQL's jsonb refuses both
    assert "\\u0000" not in text


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    check_summary(raw, summarize_unguarded(raw))


_LINES = [b"Content-Type: multipart/mixed; boundary=a", b"Content-Type: multipart/alternative; boundary=\"b\"",
          b"Content-Type: message/rfc822", b"Content-Type: text/plain; charset=utf-8", b"--a", b"--b", b"--a--",
          b"--b--", b"", b"Subject: =?utf-8?q?x?=", b"From: A <a@b>, g: c@d;", b" folded", b"body text",
          b"Content-Disposition: attachment; filename*=utf-8''%ff", b"Content-Transfer-Encoding: base64",
          b"\xff\xfe", b"To: (", b"Content-Type: multipart/digest; boundary=a"]  # fmt: skip


@SETTINGS
@given(st.lists(st.sampled_from(_LINES), max_size=40), st.sampled_from([b"\r\n", b"\n"]))
def test_mime_shaped_input_never_raises(lines: list[bytes], eol: bytes) -> None:
    raw = eol.join(lines)
    check_summary(raw, summarize_unguarded(raw))


@st.composite
def mime_trees(draw, depth: int = 0):
    """(tree, raw part) where tree is ('text', body) or ('multipart', [children])."""
    if depth < 3 and draw(st.booleans()):
        children = [draw(mime_trees(depth + 1)) for _ in range(draw(st.integers(1, 3)))]
        boundary = f"b{depth}-{draw(st.integers(0, 999))}".encode()
        raw = b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\npreamble\r\n"
        for _, part in children:
            raw += b"--" + boundary + b"\r\n" + part + b"\r\n"
        return ("multipart", [t for t, _ in children]), raw + b"--" + boundary + b"--\r\n"
    body = draw(st.text("abc xyz\r\n-", max_size=30)).encode()
    assume_ok = not any(line.startswith(b"--b") for line in body.split(b"\n"))
    body = body if assume_ok else b"safe"
    return ("text", body), b"Content-Type: text/plain\r\n\r\n" + body


@SETTINGS
@given(mime_trees())
def test_generated_structures_are_found_exactly(pair) -> None:
    tree, raw = pair
    s = summarize_unguarded(raw)
    check_summary(raw, s)

    def compare(t, node, path):
        if t[0] == "text":
            assert node["type"] == "text"
            assert section_bytes(raw, s, ".".join(map(str, path)) or "1") == t[1]
        else:
            assert len(node["parts"]) == len(t[1])
            for i, (child, sub) in enumerate(zip(t[1], node["parts"]), 1):
                compare(child, sub, path + (i,))

    compare(tree, s["body"], ())


def test_quoted_printable_drops_transport_padding():
    assert qp_decode(b"hello  \r\nbar=\r\n\r\nfoo\t= \r\n=62\r\nx=3D=\r\n") == b"hello\r\nbar\r\nfoo\tb\r\nx="
    assert qp_decode(b"bad =zz end\n") == b"bad =zz end\n"


def test_binary_parts_become_base64():
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
           b"text\r\n--b\r\nContent-Type: application/x\r\nContent-Transfer-Encoding: binary\r\n\r\n"
           b"\x00\x01\xff\r\n--b\r\n\r\n\x00\r\n--b--\r\n")
    out = binary_to_base64(raw)
    assert b"\x00" not in out and out.count(b"Content-Transfer-Encoding: base64\r\n") == 2
    s = summarize(out)
    assert decoded_body(out, s, [1]) == b"text"
    assert decoded_body(out, s, [2]) == b"\x00\x01\xff" and decoded_body(out, s, [3]) == b"\x00"
    assert binary_to_base64(b"Subject: plain\r\n\r\nno nul\r\n") == b"Subject: plain\r\n\r\nno nul\r\n"
