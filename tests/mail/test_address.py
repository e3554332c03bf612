"""Address parsing and normalisation (mail.address): what is fixed up, what is
refused and in which words, and two properties over arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from coremail.mail.address import (
    Address,
    AddressError,
    login_address,
    normalise_domain,
    parse_address,
    parse_mailbox_address,
)


# ---------------------------------------------------------------- normalising
@pytest.mark.parametrize("raw, local, domain", [
    (" alice@example.test ", "alice", "example.test"),
    ("\talice@example.test\r\n", "alice", "example.test"),
    ("\u3000alice@example.test\u3000", "alice", "example.test"),      # full-width spaces
    ("alice\uff20example.test", "alice", "example.test"),             # full-width ＠
    ("alice@example\uff0etest", "alice", "example.test"),             # full-width ．
    ("\uff41\uff4c\uff49\uff43\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e"
     "\uff54\uff45\uff53\uff54", "alice", "example.test"),             # all full-width
    ("alice@EXAMPLE.Test", "alice", "example.test"),                  # domain lower-cased
    ("Alice.Smith@example.test", "Alice.Smith", "example.test"),      # local case kept
    ("alice@b\u00fccher.example", "alice", "xn--bcher-kva.example"),  # Unicode -> IDNA
    ("alice@B\u00dcCHER.example", "alice", "xn--bcher-kva.example"),
    ("alice@\u4f8b\u3048\u3002jp", "alice", "xn--r8jz45g.jp"),          # ideographic full stop
    ("alice@\u4f8b\u3048\uff61jp", "alice", "xn--r8jz45g.jp"),          # half-width ideographic stop
    ("alice@example.test.", "alice", "example.test"),                 # root dot dropped
    ("a+tag@example.test", "a+tag", "example.test"),
    ("o'neil@example.test", "o'neil", "example.test"),
    ("user@[192.0.2.1]", "user", "[192.0.2.1]"),
])
def test_normalises(raw, local, domain):
    a = parse_address(raw)
    assert (a.local, a.domain) == (local, domain)
    assert str(a) == f"{local}@{domain}"


def test_key_is_case_insensitive_on_the_local_part():
    assert parse_address("Alice@Example.TEST").key == "alice@example.test"
    assert parse_address("Alice@Example.TEST").local == "Alice"


def test_mailbox_address_lower_cases_the_local_part():
    assert parse_mailbox_address(" Bob.Jones\uff20Example\uff0eTest ") == Address(
        "bob.jones", "example.test")


def test_normalise_domain_alone():
    assert normalise_domain(" Example.TEST ") == "example.test"
    assert normalise_domain("m\u00fcnchen.example") == "xn--mnchen-3ya.example"
    with pytest.raises(AddressError, match="empty"):
        normalise_domain("  ")


# ---------------------------------------------------------------- refusing
@pytest.mark.parametrize("raw, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("alice", "no @"),
    ("alice@b@example.test", "more than one @"),
    ("alice\uff20b@example.test", "more than one @"),
    ("@example.test", "local part"),
    ("alice@", "domain"),
    (".alice@example.test", "dot"),
    ("alice.@example.test", "dot"),
    ("al..ice@example.test", "dot"),
    ("al ice@example.test", "space"),
    ("al\u3000ice@example.test", "space"),
    ("alice @example.test", "space before the @"),
    ("alice@ example.test", "space after the @"),
    ("alice@exa mple.test", "space"),
    ("alice@example..test", "empty label"),
    ("alice@.example.test", "empty label"),
    ("a" * 65 + "@example.test", "longer than 64"),
    ("alice@" + "a" * 64 + ".test", "too long"),
    ("alice@" + ".".join(["a" * 60] * 5), "too long"),
    ("alice@-example.test", "hyphen"),
    ("alice@example-.test", "hyphen"),
    ("alice@exa_mple.test", "not"),
    ("alice@xn--zz.test", "not a valid domain"),
    ("ali(ce)@example.test", "not allowed"),
    ("ali,ce@example.test", "not allowed"),
    ('"alice@example.test', "unclosed quote"),
    ("alice\x00@example.test", "not allowed"),
    ("alice@[300.1.2.3]", "literal"),
])
def test_refuses_with_a_reason(raw, words):
    with pytest.raises(AddressError) as e:
        parse_address(raw)
    assert words in str(e.value)


def test_trailing_space_refused_when_not_trimming():
    with pytest.raises(AddressError, match="trailing space"):
        parse_address("alice@example.test ", trim=False)
    with pytest.raises(AddressError, match="leading or trailing space"):
        parse_address("\u3000alice@example.test", trim=False)
    assert str(parse_address("alice@example.test", trim=False)) == "alice@example.test"


def test_overlong_address_refused():
    local = "a" * 64
    domain = ".".join(["b" * 60] * 3) + ".ccccccccccccc"
    assert len(domain) <= 253
    with pytest.raises(AddressError, match="longer than 254"):
        parse_address(f"{local}@{domain}")


def test_not_text_refused():
    with pytest.raises(AddressError, match="not text"):
        parse_address(b"alice@example.test")  # type: ignore[arg-type]


def test_local_part_of_exactly_64_octets_is_fine():
    assert parse_address("a" * 64 + "@example.test").local == "a" * 64
    with pytest.raises(AddressError, match="64"):
        # 32 two-octet characters plus one: 65 octets although only 33 characters
        parse_address("\u00e9" * 32 + "a@example.test")


def test_non_ascii_spaces_inside_the_local_part_refused():
    # They look like an ordinary space on screen; such an address goes nowhere.
    for space in ("\u00a0", "\u2003", "\u2009", "\u200a"):
        with pytest.raises(AddressError, match="space"):
            parse_address(f"al{space}ice@example.test")


def test_control_characters_refused_in_local_part():
    for ctl in ("\x01", "\x7f", "\x85", "\x9b"):
        with pytest.raises(AddressError):
            parse_address(f"al{ctl}ice@example.test")


def test_lone_surrogates_are_an_address_error():
    # What a surrogateescape'd 8-bit byte from the wire turns into.
    for raw in ("al\udcffice@example.test", "alice@exa\udcffmple.test", '"a\udcff b"@example.test'):
        with pytest.raises(AddressError):
            parse_address(raw)


def test_address_literals():
    assert parse_address("a@[IPv6:2001:DB8::1]").domain == "[ipv6:2001:db8::1]"
    for bad in ("a@[ipv6:not an address]", "a@[IPv6:12345::]", "a@[1.2.3]",
                "a@[\u0661.\u0662.\u0663.\u0664]", "a@[]"):
        with pytest.raises(AddressError, match="literal"):
            parse_address(bad)


# ---------------------------------------------------------------- quoted local parts
def test_quoted_local_part_kept():
    a = parse_address('"john doe"@example.test')
    assert a.local == '"john doe"'
    assert str(a) == '"john doe"@example.test'


def test_quoted_local_part_may_hold_an_at_sign():
    a = parse_address('"a@b"@example.test')
    assert (a.local, a.domain) == ('"a@b"', "example.test")


def test_quoted_escapes():
    a = parse_address(r'"say \"hi\""@example.test')
    assert a.local == r'"say \"hi\""'


def test_needlessly_quoted_local_part_is_unquoted():
    assert parse_address('"john.doe"@example.test').local == "john.doe"


def test_quoted_local_part_refusals():
    with pytest.raises(AddressError, match="quoted local parts are not allowed"):
        parse_address('"john doe"@example.test', allow_quoted=False)
    with pytest.raises(AddressError, match="quoted local parts are not allowed"):
        parse_mailbox_address('"john doe"@example.test')
    with pytest.raises(AddressError, match="malformed"):
        parse_address('"john"doe@example.test')
    with pytest.raises(AddressError, match="control"):
        parse_address('"john\x07doe"@example.test')


# ---------------------------------------------------------------- logins
def test_login_with_bare_local_part_lands_in_the_primary_domain():
    assert login_address("admin", "example.test") == Address("admin", "example.test")
    assert login_address(" Admin ", "example.test") == Address("admin", "example.test")
    assert login_address("\uff41dmin", "example.test") == Address("admin", "example.test")


def test_login_with_full_address_ignores_the_primary_domain():
    assert login_address("Bob@Other.Test", "example.test") == Address("bob", "other.test")
    assert login_address("bob\uff20other.test", "example.test") == Address("bob", "other.test")


def test_login_refusals():
    for bad in ("", "a b", "a@b@c", '"x y"'):
        with pytest.raises(AddressError):
            login_address(bad, "example.test")


# ---------------------------------------------------------------- properties
_address_like = st.builds(
    lambda l, d: f"{l}@{d}",
    st.text(alphabet=st.sampled_from(list("abcXYZ09.+-_\"\\ @\u3000\uff20\uff0e\u00e9\u4f8b")),
             max_size=20),
    st.text(alphabet=st.sampled_from(list("abcXYZ09.-_ []:\u00fc\u00dc\u3002\uff0e\uff21")),
            max_size=30))
_any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_any_text, _address_like))
@example("a\udcff@b.c")
@example("a@[ipv6:\x00]")
def test_parse_never_raises_anything_but_address_error(raw):
    try:
        parse_address(raw)
    except AddressError:
        pass
    try:
        parse_address(raw, allow_quoted=False, trim=False)
    except AddressError:
        pass
    try:
        login_address(raw, "example.test")
    except AddressError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.one_of(_any_text, _address_like))
@example('"a b"@EXAMPLE.test')
@example("\uff41@\u4f8b\u3048\u3002JP.")
@example('"a\\.b"@x.test')
@example('"a\u2003b"@x.test')
def test_normalisation_is_idempotent(raw):
    try:
        a = parse_address(raw)
    except AddressError:
        return
    again = parse_address(str(a))
    assert again == a
    assert parse_address(str(a), trim=False) == a
    assert isinstance(a.local, str) and a.local
    assert a.domain == a.domain.lower()
    assert a.domain.isascii()
    assert len(str(a).encode("utf-8")) <= 254


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}", fullmatch=True),
       st.from_regex(r"[a-z0-9]{1,10}(\.[a-z]{2,6}){1,2}", fullmatch=True))
def test_plain_addresses_pass_unchanged(local, domain):
    a = parse_address(f"{local}@{domain}")
    assert str(a) == f"{local}@{domain}"
