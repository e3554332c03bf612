"""The message trace in the SQL store (a mixin of SqlStore): events written
in batches (one transaction per writer flush), found through `trace_keys`
by queue id, Message-ID or address, and purged when older than trace.keep.
"""
from __future__ import annotations

import itertools
import json
import random
from typing import Callable, Sequence

from sqlalchemy import delete, insert, select

from ...obs.trace import TraceEvent
from ..trace_keys import event_keys, normalise
from . import schema as t

_KEYED_MAX = 100_000   # (key, qid) pairs this process remembers having written
_SCAN = 5000           # key rows read per lookup, newest first
_PURGE_BATCH = 20_000
# The last part of an event's key: in this process's order, with random low
# bits so that two processes never write the same (qid, at, seq).
_SEQ = itertools.count(1)


class TraceStore:
    # Provided by SqlStore.
    _write: Callable
    _read: Callable
    _trace_keyed: set[tuple[str, str]]

    def trace_add(self, events: Sequence[TraceEvent]) -> None:
        keyed = self._trace_keyed
        rows, keys = [], []
        for e in events:
            seq = (next(_SEQ) << 24 | random.getrandbits(24)) & (2**62 - 1)
            rows.append(dict(at=e.at, qid=e.qid[:48], seq=seq, kind=e.kind,
                             service=e.service[:16],
                             message_id=e.message_id[:255], sender=e.sender[:320],
                             recipients=",".join(e.recipients), text=e.text,
                             details=json.dumps(e.details, default=str,
                                                separators=(",", ":"))))
            for k in event_keys(e):
                if (k, e.qid) not in keyed:
                    keyed.add((k, e.qid))
                    keys.append(dict(key=k, qid=e.qid[:48], at=e.at))
        if len(keyed) > _KEYED_MAX:
            keyed.clear()    # only a cache: at worst a key row is written twice
        with self._write(durable=False) as c:   # the trace may lose a moment, never mail
            if rows:
                c.execute(insert(t.trace_events), rows)
            if keys:
                c.execute(insert(t.trace_keys), keys)

    def trace_find(self, term: str, *, since: float = 0.0, until: float | None = None,
                   limit: int = 50) -> list[TraceEvent]:
        k = t.trace_keys
        ev = t.trace_events
        with self._read() as c:
            qids: list[str] = []
            when = [k.c.at >= since] + ([k.c.at <= until] if until is not None else [])
            for (q,) in c.execute(select(k.c.qid).where(k.c.key == normalise(term), *when)
                                  .order_by(k.c.at.desc()).limit(_SCAN)):
                if q not in qids:
                    qids.append(q)
                    if len(qids) >= limit:
                        break
            if not qids:
                return []
            rows = c.execute(select(ev).where(ev.c.qid.in_(qids))
                             .order_by(ev.c.at, ev.c.seq)).all()
        return [TraceEvent(kind=r.kind, qid=r.qid, text=r.text, at=r.at,
                           message_id=r.message_id, sender=r.sender,
                           recipients=tuple(x for x in r.recipients.split(",") if x),
                           service=r.service, details=json.loads(r.details or "{}"))
                for r in rows]

    def trace_purge(self, before: float) -> int:
        ev, k = t.trace_events, t.trace_keys
        with self._read() as c:   # the usual case, nothing due, costs no write
            if (c.execute(select(ev.c.at).where(ev.c.at < before).limit(1)).first() is None
                    and c.execute(select(k.c.id).where(k.c.at < before).limit(1)).first()
                    is None):
                return 0
        gone = 0
        while True:   # in slices by time, so no transaction holds the lock for long
            with self._write() as c:
                upto = c.execute(select(ev.c.at).where(ev.c.at < before).order_by(ev.c.at)
                                 .offset(_PURGE_BATCH).limit(1)).scalar()
                cut = before if upto is None else upto
                n = c.execute(delete(ev).where(ev.c.at < cut)).rowcount
                c.execute(delete(k).where(k.c.at < cut))
            gone += n
            if upto is None:
                return gone
