"""Structured logs: one line per event, `ts=... svc=... event=... key=value`.

Every line that concerns a message carries `qid=` (the queue id given at
acceptance) and every line of a connection `sid=`, so that one grep follows a
message through smtp, deliveragent, pop3 and imap: the message trace reads
these lines. Services write to stderr, which the supervisor points at
DIR/logs/SERVICE.log.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _fmt(v: Any) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' "=\n\r\t'):
        s = '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace(
            "\r", "\\r").replace("\t", "\\t") + '"'
    return s


def format_event(service: str, level: str, event: str, fields: dict[str, Any]) -> str:
    t = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    parts = [f"ts={ts}", f"level={level}", f"svc={service}", f"event={_fmt(event)}"]
    parts.extend(f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None)
    return " ".join(parts)


class Log:
    """A logger bound to a service (and optionally to fixed fields such as sid)."""

    def __init__(self, service: str, stream: IO[str] | None = None, level: str = "info",
                 **bound: Any):
        self.service = service
        self.stream = stream if stream is not None else sys.stderr
        self.threshold = LEVELS.get(level, 20)
        self.bound = bound

    def bind(self, **fields: Any) -> "Log":
        child = Log(self.service, self.stream, **{**self.bound, **fields})
        child.threshold = self.threshold
        return child

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < self.threshold:
            return
        try:
            self.stream.write(format_event(self.service, level, event, {**self.bound, **fields}) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a log that cannot be written must never stop mail

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)


def parse_line(line: str) -> dict[str, str]:
    """Inverse of format_event, for the message trace and tests."""
    out: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        eq = line.find("=", i)
        if eq < 0:
            break
        key = line[i:eq]
        i = eq + 1
        if i < n and line[i] == '"':
            i += 1
            buf = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                    buf.append({"n": "\n", "r": "\r", "t": "\t"}.get(line[i], line[i]))
                else:
                    buf.append(line[i])
                i += 1
            i += 1
            out[key] = "".join(buf)
        else:
            sp = line.find(" ", i)
            sp = n if sp < 0 else sp
            out[key] = line[i:sp]
            i = sp
    return out
