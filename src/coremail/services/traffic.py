"""Messages received, sent, refused and bounced per hour over the last day,
derived from the services' own log lines (no counter of its own to keep in
step): smtp.log's `smtp.message`/`smtp.abandoned` (received when the reply
was 2xx, refused when 4xx/5xx) and deliveragent.log's `delivery` to a remote
host with result=sent and `queue.bounced`.

Logs only grow between rotations, so each file is read once: the first
call finds the line of 24 hours ago by bisection, later calls read only the
bytes added since (a replaced or truncated file is read anew). Blocking:
call from a thread.
"""
from __future__ import annotations

import calendar

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DAY = 24 * 3600
KINDS = ("received", "sent", "refused", "bounced")
_FIELD = re.compile(r' (event|result|host|rcpts)=("(?:[^"\\]|\\.)*"|\S*)')
_TS = re.compile(rb"^ts=(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)")


@dataclass(frozen=True)
class Hour:
    start: float
    received: int = 0
    sent: int = 0
    refused: int = 0
    bounced: int = 0


def _epoch(line: bytes) -> float | None:
    m = _TS.match(line)
    if not m:
        return None
    return float(calendar.timegm(tuple(int(x) for x in m.groups()) + (0, 0, 0)))


def classify(line: str) -> str | None:
    """Which of KINDS a log line counts as, if any."""
    if "event=smtp." not in line and "event=delivery" not in line and \
            "event=queue.bounced" not in line:
        return None
    f = {k: v.strip('"') for k, v in _FIELD.findall(line)}
    event, result = f.get("event"), f.get("result", "")
    if event == "smtp.message":
        return "received" if result.startswith("2") else "refused"
    if event == "smtp.abandoned":
        return "refused" if re.search(r"=[45]\d\d", f.get("rcpts", "")) else None
    if event == "delivery" and result == "sent" and f.get("host") not in ("", "local"):
        return "sent"
    if event == "queue.bounced":
        return "bounced"
    return None


class _Tail:
    """One log file read forward from where the last call stopped."""

    def __init__(self, path: Path):
        self.path = path
        self.ino: int | None = None
        self.offset = 0
        self.partial = b""

    def _start(self, f, since: float, size: int) -> int:
        """Offset of the first line at or after `since` (bisection over lines)."""
        lo, hi = 0, size
        while hi - lo > 65536:
            mid = (lo + hi) // 2
            f.seek(mid)
            f.readline()
            t = None
            while t is None:
                line = f.readline()
                if not line:
                    break
                t = _epoch(line)
            if t is None or t >= since:
                hi = mid
            else:
                lo = mid
        return lo

    def read(self, since: float) -> list[bytes]:
        try:
            st = self.path.stat()
        except OSError:
            return []
        with open(self.path, "rb") as f:
            if st.st_ino != self.ino or st.st_size < self.offset:
                self.ino, self.partial = st.st_ino, b""
                self.offset = self._start(f, since, st.st_size)
                if self.offset:
                    f.seek(self.offset)
                    self.offset += len(f.readline())   # from a line's start
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return lines


class Traffic:
    def __init__(self, logs_dir: Path):
        self.tails = [_Tail(Path(logs_dir) / f"{svc}.log") for svc in ("smtp", "deliveragent")]
        self.counts: Counter[tuple[int, str]] = Counter()   # (hour start, kind) -> n
        self._lock = threading.Lock()

    def last_day(self, now: float | None = None) -> list[Hour]:
        """24 hours, oldest first, the last one the current (partial) hour."""
        now = time.time() if now is None else now
        first = int(now // 3600) * 3600 - 23 * 3600
        with self._lock:
            for tail in self.tails:
                for line in tail.read(first):
                    kind = classify(line.decode("utf-8", "replace"))
                    t = _epoch(line) if kind else None
                    if t is not None and t >= first:
                        self.counts[(int(t // 3600) * 3600, kind)] += 1
            for key in [k for k in self.counts if k[0] < first]:
                del self.counts[key]
            return [Hour(h, *(self.counts[(h, k)] for k in KINDS))
                    for h in range(first, first + DAY, 3600)]


def totals(hours: list[Hour]) -> dict[str, int]:
    return {k: sum(getattr(h, k) for h in hours) for k in KINDS}



