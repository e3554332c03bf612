"""kill -9 of the deliveragent process in the middle of a 1,000-message run:
afterwards every message has arrived at the sink, none is lost, and none
whose 250 the agent had read is sent again.

Not "exactly once" in every run, and honestly so: when the kill lands after
the sink stored a message but before its 250 was read, neither side can
know the message arrived (RFC 1047), and the restarted agent sends it again
rather than risk losing it. That allows at most one duplicate per open
connection; in practice 0 to 2 per 1,000. Every reply that was read is in
the sent-journal (coremail.queue.journal) before anything else runs, and the
test checks that none of those was repeated.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

from coremail.config import load_settings
from coremail.obs.log import parse_line
from coremail.services.home import init_home
from coremail.services.settings import set_value
from coremail.store import open_store
from tests.queue.conftest import message, needs_sink
from tests.support.peers import Sink
from tests.support.testdb import home_database

N = 1000


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def noted_before_kill(log) -> set[str]:
    """Message-IDs whose 250 the killed agent read (logged as sent before the restart)."""
    lines = log.read_text().splitlines()
    # The runner's line about the killed worker: the killed agent logged
    # nothing after it (a "recovered" line may be missing when the kill found
    # it holding no lease).
    restart = next(i for i, line in enumerate(lines) if "exited with status 9" in line)
    sent = set()
    for line in lines[:restart]:
        d = parse_line(line)
        if d.get("event") == "delivery" and d.get("result") == "sent":
            sent.add(d["qid"])
    return {QIDS[q] for q in sent if q in QIDS}


QIDS: dict[str, str] = {}


@needs_sink
def test_kill_9_mid_run_delivers_each_message_exactly_once(tmp_path):
    sink = Sink().start()
    home = tmp_path / "home"
    init_home(home, "example.test", admin_password="admin-pass-1", privileged=False,
              database=home_database())
    set_value(home, "delivery.relayhost", f'"127.0.0.1:{sink.port}"')
    set_value(home, "delivery.retry_intervals", '["1s"]')
    store = open_store(home, load_settings(home))
    store.migrate()
    refs = [store.blobs.write(message(msgid=f"<crash-{i}@example.test>"), sync=False)
            for i in range(N)]
    store.blobs.sync(refs)
    for i, ref in enumerate(refs):
        QIDS[ref.id] = f"<crash-{i}@example.test>"
        store.enqueue(queue_id=ref.id, blob=ref, sender="sender@example.test",
                      recipients=[f"r{i % 50}@far{i % 7}.test"])
    log = open(tmp_path / "agent.log", "w")
    runner = subprocess.Popen([sys.executable, "-m", "coremail.supervisor.runner",
                               "deliveragent", "--home", str(home)],
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: children(runner.pid), 20, "the worker")
        first = children(runner.pid)[0]
        wait_for(lambda: len(sink.files()) >= N // 3, 60, "a third of the run")
        os.kill(first, signal.SIGKILL)
        at_kill = len(sink.files())
        wait_for(lambda: children(runner.pid) and children(runner.pid)[0] != first, 20,
                 "the re-forked worker")
        wait_for(lambda: not store.queue_list(), 120, "an empty queue")
        time.sleep(0.5)
        ids = collections.Counter(sink.message_ids())
        assert at_kill < N, "the kill came after the run had finished"
        assert set(ids) == {f"<crash-{i}@example.test>" for i in range(N)}  # none lost
        # A duplicate is only allowed where SMTP itself cannot tell (RFC 1047):
        # the sink had taken the data but the kill came before its 250 was
        # read. Every reply the agent did read was honoured after the restart.
        dupes = {k for k, v in ids.items() if v > 1}
        noted = noted_before_kill(tmp_path / "agent.log")
        assert not (dupes & noted), f"a recorded delivery was sent again: {dupes & noted}"
        assert len(dupes) <= 10  # at most one per open connection (per-destination limit)
        print(f"kill -9 at {at_kill}/{N} delivered; duplicates from unread 250s: {len(dupes)}")
        assert "deliveragent.recovered" in (tmp_path / "agent.log").read_text()
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(30)
        log.close()
        store.close()
        sink.stop()
        sink.remove()
