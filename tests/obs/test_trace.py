"""The trace writer: events queued by the caller, handed to the sink in
batches by one thread; a failing sink loses the batch, never raises."""
from __future__ import annotations

from coremail.obs.trace import Tracer


def test_events_reach_the_sink_in_one_batch():
    batches = []
    t = Tracer(batches.append, service="smtp")
    for i in range(100):
        t.emit("received", f"Q{i}", "received")
    t.flush()
    assert sum(len(b) for b in batches) == 100 and len(batches) <= 2
    assert batches[0][0].service == "smtp"
    t.close()


def test_a_failing_sink_is_reported_and_the_writer_goes_on():
    lost, got = [], []

    def sink(events):
        if not got:
            got.append("failed once")
            raise OSError("database is locked")
        got.extend(events)

    t = Tracer(sink, on_error=lambda e, n: lost.append(n))
    t.emit("received", "Q1", "x")
    t.flush()
    t.emit("received", "Q2", "y")
    t.flush()
    assert lost == [1] and [e.qid for e in got[1:]] == ["Q2"]
    t.close()


def test_switched_off_records_nothing():
    batches = []
    t = Tracer(batches.append, enabled=lambda: False)
    t.emit("received", "Q1", "x")
    t.flush()
    assert batches == []
