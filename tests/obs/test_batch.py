"""The one batching thread of the log and trace writers (obs.batch): items
from many threads handled in few batches, and after a fork the child gets
a thread of its own on first use for both kinds of writer (one registry)."""
from __future__ import annotations

import io
import os
import threading

from coremail.obs.batch import BatchThread
from coremail.obs.log import LogWriter
from coremail.obs.trace import Tracer


class Collect(BatchThread):
    PAUSE = 0.02

    def __init__(self):
        super().__init__()
        self.batches: list[list] = []

    def handle(self, batch):
        self.batches.append(list(batch))


def test_items_from_many_threads_in_few_batches():
    c = Collect()
    threads = [threading.Thread(target=lambda: [c.put(i) for i in range(500)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.flush()
    assert sum(len(b) for b in c.batches) == 2000 and len(c.batches) < 200
    assert c.pending == 0
    c.close()


def test_after_fork_the_child_writes_through_a_thread_of_its_own():
    got: list = []
    tracer = Tracer(got.extend, service="smtp")
    out = io.StringIO()
    log = LogWriter(out)
    tracer.emit("received", "Q0", "before the fork")
    log.put(("smtp", "info", "before", {}, 0.0))
    tracer.flush()
    log.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: both writers start again on first use
        try:
            tracer.emit("received", "Q1", "in the child")
            log.put(("smtp", "info", "child", {}, 0.0))
            tracer.flush(2)
            log.flush(2)
            ok = [e.qid for e in got] == ["Q0", "Q1"] and "event=child" in out.getvalue()
            os.write(w, b"ok" if ok else repr([e.qid for e in got]).encode())
        finally:
            os._exit(0)
    os.close(w)
    said = os.read(r, 200)
    os.waitpid(pid, 0)
    assert said == b"ok"
    tracer.close()
    log.close()
