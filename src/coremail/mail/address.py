"""Email addresses: the one place they are parsed and normalised.

Every entry point (userutil, SMTP, POP3/IMAP login, web) goes through
`parse_address`, so that a user never sees "sent" for an address that then
goes nowhere. Normalisation that is unambiguous is applied (outer spaces,
full-width `＠` `．` and other full-width ASCII, upper-case or Unicode
domains); anything else is refused with an `AddressError` that names the
problem.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

import idna

MAX_LOCAL = 64
MAX_DOMAIN = 253
MAX_ADDRESS = 254

# Full-width ASCII forms (U+FF01..U+FF5E) map to ASCII; U+3000 is a full-width
# space; U+3002, U+FF61 are ideographic full stops that IDNA treats as dots.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH.update({0x3000: 0x20, 0x3002: 0x2E, 0xFF61: 0x2E})
_SPACES = " \t\r\n\v\f\u3000\u00a0"

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_DOT_ATOM = re.compile(rf"^[{_ATEXT}\u0080-\U0010ffff]+(\.[{_ATEXT}\u0080-\U0010ffff]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")


class AddressError(ValueError):
    """The address cannot be used; `str(err)` says why in plain words.
    `template` and `params` are the same words for a front end that shows
    them in another language (the web's catalogs extract every template)."""

    def __init__(self, template: str, **params: object):
        self.template, self.params = template, params
        super().__init__(template.format(**params))


@dataclass(frozen=True, slots=True)
class Address:
    local: str   # as given (case kept: it is the destination's business)
    domain: str  # lower-case, IDNA A-label form ("xn--...") for non-ASCII

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def key(self) -> str:
        """Lookup key for local mailboxes: local parts match case-insensitively."""
        return f"{self.local.lower()}@{self.domain}"


def fold_fullwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


def normalise_domain(raw: str) -> str:
    """Lower-case, IDNA-encoded domain, or AddressError naming the problem."""
    d = fold_fullwidth(raw).strip(_SPACES)
    if not d:
        raise AddressError("the domain is empty")
    if d.startswith("[") and d.endswith("]"):
        inner = d[1:-1]
        if _IPV4.match(inner) and all(int(p) < 256 for p in inner.split(".")):
            return d
        if inner.lower().startswith("ipv6:") and _is_ipv6(inner[5:]):
            return "[" + inner.lower() + "]"
        raise AddressError("the address literal {literal} is not valid", literal=d)
    if any(c in _SPACES for c in d):
        raise AddressError("the domain contains a space")
    if d.endswith("."):
        d = d[:-1]
    if ".." in d or d.startswith("."):
        raise AddressError("the domain has an empty label (two dots in a row or a leading dot)")
    if d.isascii() and "xn--" not in d.lower():
        ascii_d = d.lower()  # the common case: the label check below is all IDNA would do
    else:
        try:
            ascii_d = idna.encode(d, uts46=True).decode("ascii").lower()
        except idna.IDNAError as e:
            raise AddressError("the domain {domain!r} is not a valid domain name ({why})",
                               domain=d, why=str(e)) from None
    if len(ascii_d) > MAX_DOMAIN:
        raise AddressError("the domain is too long (more than 253 characters)")
    for label in ascii_d.split("."):
        if len(label) > 63:
            raise AddressError("the domain label {label}... is too long (more than 63 "
                               "characters)", label=label[:20])
        if not _LABEL.match(label):
            raise AddressError("the domain label {label!r} is not allowed (letters, digits "
                               "and inner hyphens only)", label=label)
    return ascii_d


def _is_ipv6(text: str) -> bool:
    if "%" in text:  # a zone id means nothing to another host
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _unfit(c: str) -> bool:
    """Characters that the dot-atom range lets through but no mailbox has:
    Unicode spaces (they look like a plain space) and control characters."""
    return c.isspace() or unicodedata.category(c) == "Cc"


def unquoted(text: str, ch: str, start: int = 0) -> tuple[list[int], bool]:
    """Where `ch` stands in text[start:] outside quoted strings (RFC 5321
    quoted-string, backslash escapes inside), and whether every quote closed."""
    in_quote = escaped = False
    found = []
    for i in range(start, len(text)):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\" and in_quote:
            escaped = True
        elif c == '"':
            in_quote = not in_quote
        elif c == ch and not in_quote:
            found.append(i)
    return found, not in_quote


def _split(text: str) -> tuple[str, str]:
    """Split at the unquoted '@', refusing a second unquoted one."""
    ats, closed = unquoted(text, "@")
    if not closed:
        raise AddressError("the address has an unclosed quote")
    if not ats:
        raise AddressError("the address has no @ and domain")
    if len(ats) > 1:
        raise AddressError("the address has more than one @")
    return text[:ats[0]], text[ats[0] + 1:]


def parse_address(raw: str, *, allow_quoted: bool = True, trim: bool = True) -> Address:
    """Parse and normalise one address (no angle brackets, no display name)."""
    if not isinstance(raw, str):
        raise AddressError("the address is not text")
    text = fold_fullwidth(raw)
    # Lone surrogates are undecodable 8-bit bytes (surrogateescape): no address has them.
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise AddressError("the address contains bytes that are not valid UTF-8")
    if trim:
        text = text.strip(_SPACES)
    elif text != text.strip(_SPACES):
        raise AddressError("the address has a leading or trailing space")
    if not text:
        raise AddressError("the address is empty")
    local, domain = _split(text)
    if not local:
        raise AddressError("the local part (before the @) is empty")
    if local[0] in _SPACES or local[-1] in _SPACES:
        raise AddressError("there is a space before the @")
    if not domain:
        raise AddressError("the domain (after the @) is empty")
    if domain[:1] in _SPACES:
        raise AddressError("there is a space after the @")
    if local.startswith('"'):
        if not allow_quoted:
            raise AddressError("quoted local parts are not allowed here")
        if not (len(local) >= 2 and local.endswith('"')):
            raise AddressError("the quoted local part is malformed")
        if any(unicodedata.category(c) == "Cc" for c in local):
            raise AddressError("the local part contains control characters")
        inner = re.sub(r'\\(.)', r"\1", local[1:-1])
        # A quoted local part that is a plain dot-atom is the same address unquoted.
        local = inner if _DOT_ATOM.match(inner) and not any(map(_unfit, inner)) else local
    elif not _DOT_ATOM.match(local) or any(_unfit(c) for c in local):
        if any(c in _SPACES or c.isspace() for c in local):
            raise AddressError("the local part contains a space")
        if ".." in local or local.startswith(".") or local.endswith("."):
            raise AddressError("the local part has a misplaced dot (leading, trailing or doubled)")
        bad = sorted({c for c in local
                      if _unfit(c) or not re.match(rf"[{_ATEXT}.\u0080-\U0010ffff]", c)})
        raise AddressError("the local part contains characters not allowed there: {chars!r}",
                           chars="".join(bad))
    if len(local.encode("utf-8")) > MAX_LOCAL:
        raise AddressError("the local part is longer than 64 octets")
    dom = normalise_domain(domain)
    addr = Address(local, dom)
    if len(str(addr).encode("utf-8")) > MAX_ADDRESS:
        raise AddressError("the address is longer than 254 octets")
    return addr


def parse_mailbox_address(raw: str) -> Address:
    """An address for a local mailbox (userutil, web): dot-atom local part only."""
    addr = parse_address(raw, allow_quoted=False)
    return Address(addr.local.lower(), addr.domain)


def login_address(raw: str, primary_domain: str) -> Address:
    """What a POP3/IMAP/web login names: the full address, or a bare local
    part in the primary domain."""
    text = fold_fullwidth(raw).strip(_SPACES)
    if "@" not in text:
        text = f"{text}@{primary_domain}"
    return parse_mailbox_address(text)
