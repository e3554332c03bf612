"""The header section of a raw message and the trace fields in it: one
reader for the SMTP hop check, the deliveragent's loop detection and the
DSN's copy of the original headers."""
from __future__ import annotations

import re

from .envelope import decode_words

# Received + Delivered-To lines beyond this mean a mail loop (RFC 5321 6.3
# says 100 is surely too many; real paths have fewer than 20, and a loop found
# sooner bounces sooner).
MAX_HOPS = 30

_TRACE = re.compile(rb"^(received|delivered-to)[ \t]*:[ \t]*(.*)$", re.IGNORECASE)


def header_end(data: bytes | memoryview, limit: int | None = None) -> int | None:
    """Where the header section ends: the offset just past its last line's
    line ending (before the blank line). A message with no blank line is all
    header. None when the header is longer than ``limit`` bytes."""
    if data[:2] == b"\r\n" or data[:1] == b"\n":
        return 0
    stop = len(data) if limit is None else min(len(data), limit + 4)
    data = bytes(data[:stop]) if isinstance(data, memoryview) else data
    crlf = data.find(b"\r\n\r\n", 0, stop)
    lf = data.find(b"\n\n", 0, stop)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        end = crlf + 2
    elif lf >= 0:
        end = lf + 1
    else:
        end = len(data)
        if limit is not None and stop < len(data):
            return None
    return end if limit is None or end <= limit else None


def header_section(data: bytes, limit: int | None = None) -> bytes | None:
    """The header lines (with their line endings, without the blank line),
    or None when longer than ``limit``."""
    end = header_end(data, limit)
    return None if end is None else bytes(data[:end])


def hops(header: bytes) -> int:
    """Received and Delivered-To lines: how many times the message was relayed."""
    return sum(1 for line in header.splitlines() if _TRACE.match(line))


def delivered_to(header: bytes) -> set[str]:
    """The addresses of the Delivered-To lines, lower case, without <>."""
    out = set()
    for line in header.splitlines():
        m = _TRACE.match(line)
        if m and m.group(1).lower() == b"delivered-to":
            out.add(m.group(2).decode("utf-8", "replace").strip().strip("<>").lower())
    return out


_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:[ \t]*(?:\r?\n[ \t]+)?<?([^\s<>]{1,250})>?",
                         re.IGNORECASE | re.MULTILINE)


def message_id(data: bytes, limit: int = 65536) -> str:
    """The Message-ID of a raw message, without <>, or "" (for the trace)."""
    header = header_section(data[:limit]) or b""
    m = _MESSAGE_ID.search(header)
    return m.group(1).decode("utf-8", "replace") if m else ""


_SUBJECT = re.compile(rb"^subject[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def subject(data: bytes, limit: int = 65536) -> str:
    """The Subject of a raw message, unfolded and decoded, or "" (for the trace)."""
    header = header_section(data[:limit]) or b""
    m = _SUBJECT.search(header)
    if not m:
        return ""
    raw = b" ".join(m.group(1).split()).decode("utf-8", "replace")
    return " ".join(decode_words(raw).split())[:300]
