"""The POP3 command grammar (RFC 1939, 2449, 2595, 5034): one line of bytes
in, a `Command` or a `ParseError` out. No state and no policy here, so it can
be fuzzed on its own; the session decides what a command means now."""
from __future__ import annotations

from dataclasses import dataclass

MAX_NUMBER = 2**31 - 1

# verb -> (min args, max args); PASS and the AUTH continuation keep their raw text.
VERBS: dict[str, tuple[int, int]] = {
    "USER": (1, 1), "PASS": (1, 1), "AUTH": (0, 2), "STLS": (0, 0), "CAPA": (0, 0),
    "QUIT": (0, 0), "STAT": (0, 0), "LIST": (0, 1), "RETR": (1, 1), "DELE": (1, 1),
    "NOOP": (0, 0), "RSET": (0, 0), "TOP": (2, 2), "UIDL": (0, 1), "APOP": (2, 2),
}


class ParseError(Exception):
    """A line that is not a POP3 command; the text goes after "-ERR "."""


@dataclass(frozen=True, slots=True)
class Command:
    verb: str
    args: tuple[str, ...]


def parse_command(line: bytes) -> Command:
    """Parse one command line (with or without its CRLF)."""
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    if not line.strip():
        raise ParseError("empty command")
    head, sp, rest = line.partition(b" ")
    if not head.isascii() or not head.isalpha() or len(head) > 4:
        raise ParseError("unknown command")
    verb = head.decode("ascii").upper()
    limits = VERBS.get(verb)
    if limits is None:
        raise ParseError(f"unknown command {verb}")
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("the arguments are not valid UTF-8") from None
    if any(c in text for c in "\r\n\0"):
        raise ParseError("control characters in the arguments")
    if verb == "PASS":
        # RFC 1939: the password may contain spaces; it is the rest of the line.
        if not sp or text == "":
            raise ParseError("PASS needs a password")
        return Command(verb, (text,))
    args = tuple(text.split())
    lo, hi = limits
    if not lo <= len(args) <= hi:
        raise ParseError(f"wrong number of arguments for {verb}")
    return Command(verb, args)


def parse_number(text: str) -> int:
    """A message number or line count: decimal digits, no sign, bounded."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise ParseError(f"{text!r} is not a number")
    n = int(text)
    if n > MAX_NUMBER:
        raise ParseError(f"{text} is too large")
    return n
