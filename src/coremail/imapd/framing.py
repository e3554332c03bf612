"""Incremental framing of the IMAP client stream into whole commands.

Owns the byte-level rules of RFC 3501 section 4.3 and RFC 7888: where a command
ends, literals ({n}, {n+}, ~{n}) and when the server must send a continuation,
the size limits, and recovery after a limit is hit. Grammar lives in parser.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CONTINUATION",
    "CommandFramer",
    "ContinuationNeeded",
    "FramedCommand",
    "FramingError",
    "RawLine",
]

# A literal announcement ends its line; quoted strings cannot hold CR/LF, so
# looking at the tail of a line is enough to tell one.
_LITERAL_TAIL = re.compile(rb"~?\{([0-9]{1,20})(\+?)\}\r?\Z")
_TAG = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\+]+(?= |\Z)")
_TAIL_KEEP = 32
CONTINUATION = b"+ Ready for literal data\r\n"  # the answer to ContinuationNeeded


@dataclass(frozen=True, slots=True)
class FramedCommand:
    """A whole command as sent (literals inline, final CRLF removed)."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class ContinuationNeeded:
    """A synchronising literal was announced: send ``+ Ready for literal data``."""

    tag: str | None
    size: int


@dataclass(frozen=True, slots=True)
class RawLine:
    """The next line in line mode (IDLE's DONE, an AUTHENTICATE response)."""

    line: bytes


@dataclass(frozen=True, slots=True)
class FramingError:
    """A limit was exceeded; the command was dropped and framing goes on."""

    tag: str | None
    message: str
    limit: str  # "max_line", "max_literal" or "max_command"

    def response(self) -> bytes:
        """The reply to send: ``TAG BAD ...`` (or ``* BAD`` without a tag)."""
        code = "[TOOBIG] " if self.limit != "max_line" else ""
        return f"{self.tag or '*'} BAD {code}{self.message}\r\n".encode()


Event = FramedCommand | ContinuationNeeded | RawLine | FramingError

_LINE, _LITERAL, _SKIP, _DISCARD = range(4)
_AGAIN = object()  # state changed: go round the event loop once more


def _tag_of(head: bytes) -> str | None:
    m = _TAG.match(head)
    return m.group().decode("ascii") if m else None


class CommandFramer:
    """Split a client byte stream into commands, one event at a time.

    ``feed(data)`` buffers and returns every event now complete. A server that
    changes mode mid-stream (IDLE, AUTHENTICATE) uses ``receive`` and pulls with
    ``next_event`` so that bytes after the switching command are framed under
    the new mode: call ``expect_line()`` and the next line comes as a RawLine.
    Events never depend on how the stream was chunked. A server loop::

        framer.receive(await reader.read(65536))
        while (event := framer.next_event()) is not None:
            FramedCommand -> parse_command(event.raw), then act (IDLE: expect_line())
            ContinuationNeeded -> write CONTINUATION
            FramingError -> write event.response()
            RawLine -> DONE, or the next AUTHENTICATE response (expect_line() again)
    """

    def __init__(
        self,
        max_line: int = 65536,
        max_literal: int = 64 * 1024 * 1024,
        max_command: int | None = None,
        wide_line: int = 0,
        wide_head: re.Pattern[bytes] | None = None,
    ) -> None:
        self.max_line = max_line
        # a command whose first line starts with wide_head may have lines up to
        # wide_line (ID before login: RFC 2971's maxima need some 32 KB)
        self.wide_line = wide_line
        self.wide_head = wide_head
        self.max_literal = max_literal
        self.max_command = max_command if max_command is not None else max_literal + 16 * max_line
        self._buf = bytearray()
        self._pos = 0
        self._state = _LINE
        self._need = 0  # bytes still to read (LITERAL) or to drop (SKIP)
        self._parts: list[bytes] = []
        self._size = 0
        self._tail = b""
        self._line_mode = False

    @property
    def pending(self) -> int:
        """Bytes received and not yet framed."""
        return len(self._buf) - self._pos

    def expect_line(self) -> None:
        """Deliver the next line raw, as a RawLine, without literal processing."""
        self._line_mode = True

    def receive(self, data: bytes) -> None:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def feed(self, data: bytes) -> list[Event]:
        self.receive(data)
        events = []
        while (ev := self.next_event()) is not None:
            events.append(ev)
        return events

    def next_event(self) -> Event | None:
        while True:
            state = self._state
            if state == _LINE:
                ev = self._line()
                if ev is not _AGAIN:
                    return ev
                continue
            buf, pos = self._buf, self._pos
            avail = len(buf) - pos
            if state == _DISCARD:
                nl = buf.find(b"\n", pos)
                end = len(buf) if nl < 0 else nl
                self._tail = (self._tail + buf[max(pos, end - _TAIL_KEEP) : end])[-_TAIL_KEEP:]
                if nl < 0:
                    self._pos = end
                    return None
                self._pos = nl + 1
                self._after_discard()
                continue
            if not avail:
                return None
            take = min(avail, self._need)
            if state == _LITERAL:
                self._parts.append(bytes(buf[pos : pos + take]))
            self._pos = pos + take
            self._need -= take
            if not self._need:
                self._state = _LINE if state == _LITERAL else _DISCARD
                self._tail = b""

    def _limit(self, buf: bytearray, pos: int) -> int:
        if self.wide_head is not None and not self._parts and self.wide_head.match(buf, pos):
            return max(self.wide_line, self.max_line)
        return self.max_line

    def _line(self) -> Event | object | None:
        while True:
            buf, pos = self._buf, self._pos
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if len(buf) - pos > self._limit(buf, pos) + 1:
                    return self._too_long()
                return None
            end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
            if end - pos > self.max_line and end - pos > self._limit(buf, pos):
                return self._too_long()
            seg = bytes(buf[pos:end])
            self._pos = nl + 1
            if self._line_mode:
                self._line_mode = False
                return RawLine(seg)
            m = _LITERAL_TAIL.search(seg, max(0, len(seg) - _TAIL_KEEP))
            if m is None:
                if not self._parts and not seg.strip():
                    continue  # tolerate blank lines between commands
                self._parts.append(seg)
                raw = b"".join(self._parts)
                self._reset()
                return FramedCommand(raw)
            size, sync = int(m.group(1)), not m.group(2)
            tag = _tag_of(self._parts[0] if self._parts else seg)
            if size > self.max_literal or self._size + len(seg) + size > self.max_command:
                limit = "max_literal" if size > self.max_literal else "max_command"
                cap = self.max_literal if size > self.max_literal else self.max_command
                self._reset()
                if not sync:
                    # the client sends the data anyway: drop it, then the line's rest
                    self._state, self._need = _SKIP, size
                return FramingError(tag, f"Literal too large ({limit} is {cap} octets)", limit)
            self._parts += (seg[:-1] if seg.endswith(b"\r") else seg, b"\r\n")
            self._size += len(seg) + 2 + size
            self._state, self._need = (_LITERAL, size) if size else (_LINE, 0)
            return ContinuationNeeded(tag, size) if sync else _AGAIN

    def _too_long(self) -> FramingError:
        buf, pos = self._buf, self._pos
        tag = None if self._line_mode else _tag_of(self._parts[0] if self._parts else bytes(buf[pos : pos + 64]))
        self._line_mode = False
        self._reset()
        self._state, self._tail = _DISCARD, b""
        return FramingError(tag, f"Line too long (max_line is {self.max_line} octets)", "max_line")

    def _after_discard(self) -> None:
        # A dropped line may announce a non-synchronising literal whose data
        # follows regardless; skip it too so it is not read as commands.
        m = _LITERAL_TAIL.search(self._tail.rstrip(b"\r") + b"\r")
        self._tail = b""
        if m is not None and m.group(2):
            self._state, self._need = _SKIP, int(m.group(1))
            if not self._need:
                self._state = _DISCARD
        else:
            self._state = _LINE

    def _reset(self) -> None:
        self._parts = []
        self._size = 0
