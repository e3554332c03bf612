"""The command and path grammar, with hypothesis: any bytes give a Command
or a SyntaxReply (never another exception), and well-formed paths round-trip."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from coremail.smtpd.parser import (Path, SyntaxReply, parse_bdat_arg, parse_command, parse_path,
                                   parse_params)


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_any_bytes_parse_or_refuse(data):
    try:
        cmd = parse_command(data)
    except SyntaxReply as e:
        assert e.verdict.code in (500, 501)
        return
    assert cmd.verb.isalpha() and cmd.verb.isupper()


@given(st.text(max_size=200))
@settings(max_examples=400, deadline=None)
def test_any_text_path_parses_or_refuses(text):
    for kw in ("FROM", "TO"):
        try:
            p = parse_path(text, kw, allow_null=kw == "FROM")
        except SyntaxReply as e:
            assert e.verdict.code in (501, 555) and e.verdict.enhanced.startswith("5.")
        else:
            assert isinstance(p, Path)


local = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_-]{1,10}){0,2}",
                      fullmatch=True)
domain = st.from_regex(r"[a-z0-9]{1,15}(\.[a-z0-9]{1,10}){1,3}", fullmatch=True)
params = st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9]{0,8}", fullmatch=True),
                         st.one_of(st.none(), st.from_regex(r"[!-<>-~]{1,12}", fullmatch=True)),
                         max_size=3)


@given(local, domain, params, st.booleans())
@settings(max_examples=300, deadline=None)
def test_paths_round_trip(lp, dom, prm, space):
    tail = "".join(f" {k}" if v is None else f" {k}={v}" for k, v in prm.items())
    p = parse_path(f"TO:{' ' if space else ''}<{lp}@{dom}>{tail}", "TO", allow_null=False)
    assert p.mailbox == f"{lp}@{dom}" and p.params == prm and p.route == ()


def test_examples():
    assert parse_command(b"mail FROM:<a@b.c>  ").verb == "MAIL"
    assert parse_path("FROM:<>", "FROM", allow_null=True).null
    p = parse_path("TO:<@relay.test,@b.test:u@far.test>", "TO", allow_null=False)
    assert p.route == ("relay.test", "b.test") and p.mailbox == "u@far.test"
    p = parse_path('TO:<"odd > name"@x.test> NOTIFY=NEVER', "TO", allow_null=False)
    assert p.mailbox == '"odd > name"@x.test' and p.params == {"NOTIFY": "NEVER"}
    assert parse_params("SIZE=10 body=8BITMIME SMTPUTF8") == {
        "SIZE": "10", "BODY": "8BITMIME", "SMTPUTF8": None}
    assert parse_bdat_arg("100 last") == (100, True)
    for bad in ("TO:a@b.c", "TO:<a@b.c", "TO:<>", "TO:<@x.test>", "TO:<a@b.c>X=",
                "TO:<a@b.c>SIZE=1", "TO:<a\x01@b.c>", "FROM:<a@b.c>"):
        with pytest.raises(SyntaxReply):
            parse_path(bad, "TO", allow_null=False)
    for bad in (b"\xff", b"M4IL x", b"MAIL\x00", b"", b"12345"):
        with pytest.raises(SyntaxReply):
            parse_command(bad)
