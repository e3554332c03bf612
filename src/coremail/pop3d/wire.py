"""Turning stored message bytes into POP3 multi-line data, on bytes only.

Stored messages are CRLF (SMTP DATA is); a blob that has bare LFs (an IMAP
APPEND, an import) is sent normalised to CRLF, with a final CRLF added when
missing. The octet count POP3 announces (LIST, STAT, RETR's +OK) is the size
of that normalised message, before dot-stuffing, so a client that checks it
against what it received always agrees. Everything here works with a few
C-speed `bytes` methods per chunk, never a Python loop per line.
"""
from __future__ import annotations

from typing import BinaryIO

SCAN_CHUNK = 1 << 20


def wire_size_of(f: BinaryIO) -> int:
    """Octets of the normalised message read from `f` (what RETR will send,
    before dot-stuffing): every bare LF gains a CR, and a missing final CRLF
    is added."""
    size = lf = crlf = 0
    prev_cr = False
    last = b""
    while chunk := f.read(SCAN_CHUNK):
        lf += chunk.count(b"\n")
        crlf += chunk.count(b"\r\n")
        if prev_cr and chunk[:1] == b"\n":
            crlf += 1  # a CRLF split across two reads
        prev_cr = chunk[-1:] == b"\r"
        last = chunk[-1:]
        size += len(chunk)
    return size + (lf - crlf) + (2 if size and last != b"\n" else 0)


def normalise(data: bytes) -> bytes:
    """CRLF line ends everywhere and a final CRLF (empty stays empty)."""
    if b"\n" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def stuff(data: bytes) -> bytes:
    """Dot-stuff a normalised message (RFC 1939 section 3): a line that starts
    with "." gets one more. The terminator ".\\r\\n" is the caller's."""
    if b"\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    if data[:1] == b".":
        data = b"." + data
    return data


def encode(data: bytes, clean: bool) -> bytes:
    """The whole message as multi-line data (without the terminator). `clean`
    means the bytes are already normalised (known from their wire size)."""
    return stuff(data if clean else normalise(data))


def top(data: bytes, lines: int) -> bytes:
    """The header, the blank line and the first `lines` body lines of a
    normalised message (RFC 1939 TOP), still normalised."""
    if data.startswith(b"\r\n"):
        body_at = 2
    else:
        sep = data.find(b"\r\n\r\n")
        if sep < 0:
            return data  # no body at all: the whole thing is header
        body_at = sep + 4
    end = body_at
    for _ in range(lines):
        nl = data.find(b"\r\n", end)
        if nl < 0:
            return data
        end = nl + 2
    return data[:end]


class StreamEncoder:
    """The same transformation as `encode`, chunk by chunk, for messages too
    big to hold at once. Each chunk is cut after its last LF, so a line start
    or a CRLF never straddles two pieces; the rest waits for the next chunk."""

    def __init__(self, clean: bool):
        self.clean = clean
        self.carry = b""
        self.at_line_start = True
        self.tail = b""  # the last two octets sent, to know whether CRLF ends it

    def _piece(self, piece: bytes) -> bytes:
        if not piece:
            return b""
        if not self.clean and b"\n" in piece:
            piece = piece.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if b"\n." in piece:
            piece = piece.replace(b"\r\n.", b"\r\n..")
        if self.at_line_start and piece[:1] == b".":
            piece = b"." + piece
        self.at_line_start = piece.endswith(b"\n")
        self.tail = piece[-2:] if len(piece) >= 2 else (self.tail + piece)[-2:]
        return piece

    def feed(self, chunk: bytes) -> bytes:
        buf = self.carry + chunk if self.carry else chunk
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            # No line end at all in a whole chunk: send it, but hold back a
            # final CR whose LF may open the next chunk.
            cut = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
        self.carry = buf[cut:]
        return self._piece(buf[:cut])

    def finish(self) -> bytes:
        out = self._piece(self.carry)
        self.carry = b""
        if (self.tail or out) and self.tail != b"\r\n":
            out += b"\r\n"
            self.tail = b"\r\n"
        return out
