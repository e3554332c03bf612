"""The message trace's storage on every backend: events found by queue id,
Message-ID (with or without <>) and address in any case, all the events of
the newest messages, `since`, and the purge."""
from __future__ import annotations

import time

from coremail.obs.trace import TraceEvent


def _ev(kind, qid, at, **kw):
    return TraceEvent(kind, qid, f"{kind} of {qid}", at=at, **kw)


def test_found_by_qid_message_id_and_address(store):
    t = time.time()
    store.trace_add([
        _ev("received", "Q1", t, message_id="m1@x.test", sender="Ann@Remote.test",
            recipients=("bob@example.test",), details={"ip": "192.0.2.1"}),
        _ev("delivered", "Q1", t + 1, recipients=("bob@example.test",),
            details={"folder": "Junk"}),
        _ev("received", "Q2", t + 2, message_id="m2@x.test", sender="carl@remote.test",
            recipients=("bob@example.test",)),
    ])
    store.trace_add([_ev("sent", "Q1", t + 3, recipients=("dan@far.test",))])
    by_qid = store.trace_find("q1")
    assert [e.kind for e in by_qid] == ["received", "delivered", "sent"]
    assert by_qid[0].details == {"ip": "192.0.2.1"} and by_qid[1].details["folder"] == "Junk"
    assert by_qid[0].recipients == ("bob@example.test",)
    assert [e.qid for e in store.trace_find("<M1@x.test>")] == ["Q1"] * 3
    assert {e.qid for e in store.trace_find("ann@remote.test")} == {"Q1"}
    assert {e.qid for e in store.trace_find("BOB@example.test")} == {"Q1", "Q2"}
    assert {e.qid for e in store.trace_find("dan@far.test")} == {"Q1"}
    assert store.trace_find("nobody@example.test") == []
    assert {e.qid for e in store.trace_find("bob@example.test", limit=1)} == {"Q2"}
    assert {e.qid for e in store.trace_find("bob@example.test", since=t + 1.5)} == {"Q2"}


def test_purge_drops_old_events_and_their_keys(store):
    t = time.time()
    store.trace_add([_ev("received", "OLD", t - 100, sender="a@b.test"),
                     _ev("received", "NEW", t, sender="a@b.test")])
    assert store.trace_purge(t - 50) == 1
    assert store.trace_purge(t - 50) == 0
    assert {e.qid for e in store.trace_find("a@b.test")} == {"NEW"}
    assert store.trace_find("OLD") == []
