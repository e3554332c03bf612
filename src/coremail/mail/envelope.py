"""RFC 5322 header fields as IMAP's ENVELOPE needs them, plus display helpers.

Owns the header-block scan (offsets, never copies of the message), the
address-list grammar reduced to IMAP (name, adl, mailbox, host) tuples with
group markers, RFC 2047 decoding for display, and the IMAP string quoting used
when an envelope or body structure is rendered. Nothing here raises on bad input.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re

from .charsets import codec_for

__all__ = [
    "ENVELOPE_FIELDS",
    "build_envelope",
    "clean_text",
    "decode_words",
    "field_value",
    "first_values",
    "from_display",
    "imap_nstring",
    "parse_addresses",
    "parse_date",
    "render_envelope",
    "scan_header",
]

ENVELOPE_FIELDS = ("date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id")
_ADDRESS_FIELDS = frozenset(("from", "sender", "reply-to", "to", "cc", "bcc"))
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_QUOTABLE = re.compile(r"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_WORD = re.compile(r'[^\s"(),:;<>@\[\]]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)("?)', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


def scan_header(raw: bytes, start: int, end: int) -> tuple[list[list], int, int]:
    """The header block at raw[start:end]: (fields, header_end, body_start).

    Each field is [lower-case name, first octet, octet after its last line
    ending]. header_end is where the blank line starts; body_start follows it.
    Without a blank line the header stops at the first line that is not a
    field (that line starts the body), so bodies that lost the separator
    still show.
    """
    fields: list[list] = []
    pos = start
    while pos < end:
        nl = raw.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = raw[pos]
        if first == 10 or (first == 13 and (pos + 1 == end or raw[pos + 1] == 10)):
            return fields, pos, line_end
        if first == 32 or first == 9:
            if not fields:
                return fields, pos, pos
            fields[-1][2] = line_end
        else:
            m = _FIELD_NAME.match(raw, pos, line_end)
            if m is None:
                return fields, pos, pos
            name = raw[pos : m.end() - 1].rstrip(b" \t").decode("ascii").lower()
            fields.append([name, pos, line_end])
        pos = line_end
    return fields, end, end


def _text(b: bytes) -> str:
    # 8-bit headers are UTF-8 in practice; anything else keeps its octets as Latin-1
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        s = b.decode("latin-1")
    return s.replace("\x00", "")


def field_value(raw: bytes, field: list) -> str:
    """The unfolded value of a field from scan_header, outer blanks removed."""
    colon = raw.find(b":", field[1], field[2])
    value = raw[colon + 1 : field[2]].replace(b"\r\n", b"").replace(b"\n", b"").replace(b"\r", b"")
    return _text(value.strip(b" \t"))


def first_values(raw: bytes, fields: list[list], names) -> dict[str, str]:
    """The value of the first occurrence of each wanted field."""
    out: dict[str, str] = {}
    for f in fields:
        if f[0] in names and f[0] not in out:
            out[f[0]] = field_value(raw, f)
    return out


def _tokens(s: str) -> list[tuple[str, str]]:
    """RFC 5322 lexical tokens: w(ord) q(uoted) c(omment) d(omain literal) or a special."""
    toks: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            m = _QUOTED.match(s, i)
            toks.append(("q", _ESCAPE.sub(r"\1", m.group(1))))
            i = m.end()
        elif c == "(":
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                ch = s[j]
                if ch == "\\" and j + 1 < n:
                    j += 1
                    ch = s[j]
                elif ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                if depth:
                    buf.append(ch)
                j += 1
            toks.append(("c", "".join(buf).strip()))
            i = j
        elif c == "[":
            j = s.find("]", i)
            j = n if j < 0 else j + 1
            toks.append(("d", s[i:j]))
            i = j
        elif c in "<>@,;:":
            toks.append((c, c))
            i += 1
        else:
            m = _WORD.match(s, i)
            j = m.end() if m else i + 1
            toks.append(("w", s[i:j]))
            i = j
    return toks


def _join(toks: list[tuple[str, str]]) -> str:
    out = []
    for kind, text in toks:
        if kind == "q":
            out.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif kind != "c":
            out.append(text)
    return "".join(out)


def _phrase(toks: list[tuple[str, str]]) -> str | None:
    words = [text for kind, text in toks if kind in "wqd"]
    return " ".join(words) if words else None


def _mailbox(toks: list[tuple[str, str]], out: list[list]) -> None:
    if not any(kind in "wqd" for kind, _ in toks):
        return
    kinds = [k for k, _ in toks]
    adl = None
    if "<" in kinds:
        lt = kinds.index("<")
        name = _phrase(toks[:lt])
        inner = [t for t in toks[lt + 1 :] if t[0] != "c"]
        inner_kinds = [k for k, _ in inner]
        if ">" in inner_kinds:
            inner = inner[: inner_kinds.index(">")]
        if inner and inner[0][0] == "@" and any(k == ":" for k, _ in inner):
            colon = [k for k, _ in inner].index(":")
            adl = _join(inner[:colon]) or None
            inner = inner[colon + 1 :]
        spec = inner
    else:
        comments = [text for kind, text in toks if kind == "c" and text]
        name = comments[0] if comments else None
        spec = [t for t in toks if t[0] != "c"]
    ats = [i for i, (k, _) in enumerate(spec) if k == "@"]
    if ats:
        local, host = _join(spec[: ats[-1]]), _join(spec[ats[-1] + 1 :])
    else:
        local, host = _join(spec), ""
    if local or host or name:
        out.append([name, adl, local, host])


def parse_addresses(value: str) -> list[list]:
    """An address list as IMAP address tuples [name, adl, mailbox, host].

    A group becomes [None, None, group name, None] ... [None, None, None, None].
    Display names keep their RFC 2047 encoded words, as IMAP requires.
    """
    out: list[list] = []
    cur: list[tuple[str, str]] = []
    angle = group = False
    for tok in _tokens(value):
        kind = tok[0]
        if angle:
            cur.append(tok)
            angle = kind != ">"
        elif kind == "<":
            angle = True
            cur.append(tok)
        elif kind == ",":
            _mailbox(cur, out)
            cur = []
        elif kind == ":" and not group and not any(k in "@<" for k, _ in cur):
            out.append([None, None, _phrase(cur) or "", None])
            group, cur = True, []
        elif kind == ";":
            _mailbox(cur, out)
            cur = []
            if group:
                out.append([None, None, None, None])
                group = False
        else:
            cur.append(tok)
    _mailbox(cur, out)
    if group:
        out.append([None, None, None, None])
    return out


def build_envelope(raw: bytes, fields: list[list]) -> dict:
    """The ENVELOPE members of a header: raw strings and parsed address lists."""
    values = first_values(raw, fields, ENVELOPE_FIELDS)
    env: dict = {}
    for name in ENVELOPE_FIELDS:
        value = values.get(name)
        key = name.replace("-", "_")
        if name in _ADDRESS_FIELDS:
            env[key] = (parse_addresses(value) or None) if value is not None else None
        else:
            env[key] = value
    return env


def imap_nstring(value: str | None) -> bytes:
    """NIL, a quoted string, or a literal for what cannot be quoted (8-bit, CR/LF)."""
    if value is None:
        return b"NIL"
    if len(value) < 4096 and _QUOTABLE.fullmatch(value):
        return ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"').encode("ascii")
    data = value.encode("utf-8", "replace")
    return b"{%d}\r\n%s" % (len(data), data)


def _address_list(addresses: list[list] | None) -> bytes:
    if not addresses:
        return b"NIL"
    return b"(" + b"".join(b"(" + b" ".join(imap_nstring(x) for x in a) + b")" for a in addresses) + b")"


def render_envelope(env: dict) -> bytes:
    """The parenthesised ENVELOPE of RFC 3501 section 7.4.2."""
    sender = env.get("sender") or env.get("from")  # RFC 3501: absent Sender/Reply-To copy From
    reply_to = env.get("reply_to") or env.get("from")
    return b"(" + b" ".join((
        imap_nstring(env.get("date")),
        imap_nstring(env.get("subject")),
        _address_list(env.get("from")),
        _address_list(sender),
        _address_list(reply_to),
        _address_list(env.get("to")),
        _address_list(env.get("cc")),
        _address_list(env.get("bcc")),
        imap_nstring(env.get("in_reply_to")),
        imap_nstring(env.get("message_id")),
    )) + b")"  # fmt: skip


def _decode_word(m: re.Match[str]) -> str:
    charset, enc, text = m.group(1).lower(), m.group(2).upper(), m.group(3)
    try:
        if enc == "B":
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = binascii.a2b_qp(text.encode("ascii", "replace"), header=True)
    except ValueError:
        return m.group(0)
    try:
        return clean_text(data.decode(codec_for(charset), "replace"))
    except (LookupError, ValueError, TypeError):  # unknown or non-text codec names
        return data.decode("utf-8", "replace")


def clean_text(s: str) -> str:
    """Lone surrogates (UTF-7 can make them) replaced: JSON stores must accept it."""
    return s.encode("utf-8", "replace").decode("utf-8") if not s.isascii() else s


def decode_words(value: str | None) -> str:
    """RFC 2047 encoded words decoded for display; blanks between words dropped."""
    if not value:
        return ""
    out = []
    pos = 0
    after_word = False
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if not (after_word and not between.strip()):
            out.append(between)
        out.append(_decode_word(m))
        pos = m.end()
        after_word = True
    out.append(value[pos:])
    return "".join(out)


def from_display(env: dict) -> str:
    """What a mail list shows as the sender: the decoded name, else the address."""
    for name, _adl, mailbox, host in env.get("from") or ():
        if host is None:
            continue  # group marker
        if name:
            return decode_words(name)
        return f"{mailbox}@{host}" if host else mailbox or ""
    return ""


def parse_date(value: str | None) -> int | None:
    """A Date header as a Unix time, or None when it cannot be read."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else int(email.utils.mktime_tz(parsed))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
