"""What a trace event can be found by (both stores use this): its queue id,
its Message-ID and every address on it, lower-cased, angle brackets off."""
from __future__ import annotations

from typing import Iterable

from ..obs.trace import TraceEvent

MAX_KEY = 320


def normalise(term: str) -> str:
    """A search term or key as stored: "<ID@host>" and "ID@host" are one."""
    t = term.strip()
    if t.startswith("<") and t.endswith(">"):
        t = t[1:-1]
    return t.strip().lower()[:MAX_KEY]


def event_keys(e: TraceEvent) -> Iterable[str]:
    seen: set[str] = set()
    for raw in (e.qid, e.message_id, e.sender, *e.recipients):
        k = normalise(raw) if raw else ""
        if k and k not in seen:
            seen.add(k)
            yield k
