"""Structured logs: one line per event, `ts=... svc=... event=... key=value`.

Every line that concerns a message carries `qid=` (the queue id given at
acceptance) and every line of a connection `sid=`, so that one grep follows a
message through smtp, deliveragent, pop3 and imap: the message trace reads
these lines. Services write to stderr, which the supervisor points at
DIR/logs/SERVICE.log. A service process writes through a `LogWriter`: the
caller only queues the event, and one thread (obs.batch) formats and writes
whatever has queued up in one write, so no event loop waits on a log file.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any

from .batch import BatchThread

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _fmt(v: Any) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' "=\n\r\t'):
        s = '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace(
            "\r", "\\r").replace("\t", "\\t") + '"'
    return s


def format_event(service: str, level: str, event: str, fields: dict[str, Any],
                 t: float | None = None) -> str:
    t = time.time() if t is None else t
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    parts = [f"ts={ts}", f"level={level}", f"svc={service}", f"event={_fmt(event)}"]
    parts.extend(f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None)
    return " ".join(parts)


class LogWriter(BatchThread):
    """Events queued by any thread, written in order by one thread in one
    write per batch (obs.batch: started on first use, again after a fork)."""

    BATCH = 4096
    PAUSE = 0.05   # seconds; a line reaches the file at most this much later
    NAME = "log-writer"

    def __init__(self, stream: IO[str]):
        super().__init__()
        self.stream = stream

    def handle(self, batch) -> None:
        try:
            self.stream.write("".join(format_event(*b) + "\n" for b in batch))
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a log that cannot be written must never stop mail


class Log:
    """A logger bound to a service (and optionally to fixed fields such as
    sid). Without a writer it writes synchronously (the CLI, tests)."""

    def __init__(self, service: str, stream: IO[str] | None = None, level: str = "info",
                 writer: LogWriter | None = None, **bound: Any):
        self.service = service
        self.stream = stream if stream is not None else sys.stderr
        self.threshold = LEVELS.get(level, 20)
        self.writer = writer
        self.bound = bound

    def bind(self, **fields: Any) -> "Log":
        child = Log(self.service, self.stream, writer=self.writer, **{**self.bound, **fields})
        child.threshold = self.threshold
        return child

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < self.threshold:
            return
        merged = {**self.bound, **fields}
        if self.writer is not None:
            self.writer.put((self.service, level, event, merged, time.time()))
            return
        try:
            self.stream.write(format_event(self.service, level, event, merged) + "\n")
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
