"""The message trace in the memory store (a mixin of MemoryStore), with the
SQL store's behaviour: events found by queue id, Message-ID or address
(store.trace_keys), all the events of the newest matching messages."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from ...obs.trace import TraceEvent
from ..trace_keys import event_keys, normalise


class MemoryTrace:
    # Provided by MemoryStore.
    _lock: object
    _trace_events: list[TraceEvent]
    _trace_index: dict[str, list[tuple[float, str]]]    # key -> (at, qid)

    def _trace(self) -> tuple[list[TraceEvent], dict[str, list[tuple[float, str]]]]:
        return self._trace_events, self._trace_index

    def trace_add(self, events: Sequence[TraceEvent]) -> None:
        with self._lock:
            stored, index = self._trace()
            for e in events:
                stored.append(dataclasses.replace(e, details=dict(e.details)))
                for k in event_keys(e):
                    index.setdefault(k, []).append((e.at, e.qid))

    def trace_find(self, term: str, *, since: float = 0.0, until: float | None = None,
                   limit: int = 50) -> list[TraceEvent]:
        with self._lock:
            stored, index = self._trace()
            qids: list[str] = []
            for at, q in sorted(index.get(normalise(term), []), reverse=True):
                if at >= since and (until is None or at <= until) and q not in qids:
                    qids.append(q)
                    if len(qids) >= limit:
                        break
            want = set(qids)
            return sorted((dataclasses.replace(e) for e in stored if e.qid in want),
                          key=lambda e: e.at)

    def trace_purge(self, before: float) -> int:
        with self._lock:
            stored, index = self._trace()
            keep = [e for e in stored if e.at >= before]
            gone = len(stored) - len(keep)
            self._trace_events = keep
            for k in list(index):
                index[k] = [x for x in index[k] if x[0] >= before]
                if not index[k]:
                    del index[k]
            return gone
