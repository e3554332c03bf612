"""What a message says, for the classifier: the decoded subject, the text of
its text/plain and text/html parts (HTML reduced to its words, its link and
image addresses kept apart), decoded from their charsets.

Parsed with the standard library's email package (compat32: the fastest,
and forgiving of broken mail); HTML reduced to text by nh3 (the Rust
ammonia sanitiser, already our webmail's), with script and style contents
dropped: a reader never sees them. Comments vanish too, so "V<!-- -->iagra"
is read as one word, as a reader reads it."""
from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from html import unescape

import nh3

MAX_PARTS = 50           # text parts read per message
MAX_TEXT = 200_000       # characters of text read per part
_SKIP_TAGS = {"script", "style"}
_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)")
_LINK = re.compile(r"""(?i)\b(?:href|src|action|background)\s*=\s*["']?([^"'\s>]+)""")
_BLOCK = re.compile(r"(?i)</?(?:br|p|div|td|th|tr|li|h[1-6]|table|blockquote)\b")


@dataclass
class MessageText:
    subject: str = ""
    texts: list[str] = field(default_factory=list)     # plain text, HTML as text
    links: list[str] = field(default_factory=list)     # href/src values of HTML parts
    html_tags: dict[str, int] = field(default_factory=dict)
    types: list[str] = field(default_factory=list)     # content types of every part
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower name, decoded value)


def html_to_text(html: str, out: MessageText) -> str:
    """The words a reader sees; link and image addresses and the tags used
    are noted in `out`."""
    tags = out.html_tags
    for t in _TAG.findall(html[:MAX_TEXT]):
        t = t.lower()
        tags[t] = tags.get(t, 0) + 1
    out.links.extend(m.group(1) for m in _LINK.finditer(html))
    spaced = _BLOCK.sub(r" \g<0>", html)   # <td>a</td><td>b</td> is two words, not "ab"
    return unescape(nh3.clean(spaced, tags=set(), clean_content_tags=_SKIP_TAGS))


def decode_header_value(raw: str) -> str:
    if "=?" not in raw:
        return raw
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, TypeError):
        return raw


def _charset_text(payload: bytes, charset: str | None) -> str:
    for cs in (charset, "utf-8"):
        if not cs:
            continue
        try:
            return payload.decode(cs, "replace")
        except (LookupError, ValueError):
            continue
    return payload.decode("latin-1")


def extract(raw: bytes) -> MessageText:
    """Never raises: broken MIME gives what could be read."""
    msg = email.message_from_bytes(raw)
    out = MessageText()
    for name, value in msg.items():
        out.headers.append((name.lower(), decode_header_value(str(value))))
    out.subject = next((v for n, v in out.headers if n == "subject"), "")
    n = 0
    for part in msg.walk():
        ctype = part.get_content_type()
        out.types.append(ctype)
        if part.is_multipart() or not ctype.startswith("text/") or n >= MAX_PARTS:
            continue
        if part.get_content_disposition() == "attachment" and ctype not in ("text/plain", "text/html"):
            continue
        n += 1
        try:
            payload = part.get_payload(decode=True)
        except (ValueError, TypeError, AssertionError):
            payload = None
        if not isinstance(payload, bytes):
            continue
        text = _charset_text(payload[:MAX_TEXT * 2], part.get_content_charset())[:MAX_TEXT]
        out.texts.append(html_to_text(text, out) if ctype == "text/html" else text)
    return out
