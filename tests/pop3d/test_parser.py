"""parser.py: the command grammar, and a fuzz that any line gives either a
Command or a ParseError, never another exception."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coremail.pop3d.parser import VERBS, Command, ParseError, parse_command, parse_number


@pytest.mark.parametrize("line,want", [
    (b"USER alice\r\n", Command("USER", ("alice",))),
    (b"user alice@example.test\r\n", Command("USER", ("alice@example.test",))),
    (b"PASS  two  spaces \r\n", Command("PASS", (" two  spaces ",))),
    (b"RETR 12\r\n", Command("RETR", ("12",))),
    (b"TOP 1 0\n", Command("TOP", ("1", "0"))),
    (b"LIST\r\n", Command("LIST", ())),
    (b"AUTH PLAIN AGFsaWNlAHB3\r\n", Command("AUTH", ("PLAIN", "AGFsaWNlAHB3"))),
    (b"capa", Command("CAPA", ())),
])
def test_parse(line, want):
    assert parse_command(line) == want


@pytest.mark.parametrize("line", [b"\r\n", b"HELO x\r\n", b"RETR\r\n", b"RETR 1 2\r\n",
                                  b"TOP 1\r\n", b"\xff\xfe\r\n", b"USER \xff\r\n",
                                  b"STAT now\r\n", b"PASS\r\n", b"USER a\x00b\r\n"])
def test_refused(line):
    with pytest.raises(ParseError):
        parse_command(line)


def test_numbers():
    assert parse_number("7") == 7
    for bad in ("-1", "+1", "1.0", "", "99999999999", "\u0661"):
        with pytest.raises(ParseError):
            parse_number(bad)


verbs = st.sampled_from(sorted(VERBS) + ["XYZ", "", "RETRX"])


@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(line):
    try:
        cmd = parse_command(line)
    except ParseError:
        return
    assert cmd.verb in VERBS


@given(verbs, st.lists(st.text(max_size=12), max_size=4), st.sampled_from([b"\r\n", b"\n", b""]))
def test_fuzz_verb_like_lines(verb, args, end):
    line = " ".join([verb, *args]).encode("utf-8", "surrogatepass") + end
    try:
        cmd = parse_command(line)
    except ParseError:
        return
    lo, hi = VERBS[cmd.verb]
    assert cmd.verb == "PASS" or lo <= len(cmd.args) <= hi
