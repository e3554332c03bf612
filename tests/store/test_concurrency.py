"""Several OS processes delivering into one mailbox at once: the quota is
checked and charged atomically, and no row is lost or doubled (SQLite with
IMMEDIATE transactions, PostgreSQL with row locks)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from coremail.store.interfaces import Delivered, Delivery, QuotaExceeded
from coremail.store.sql.store import SqlStore

from .test_store import DOMAIN, add_user, open_store

QUOTA = 60_000
PER_WORKER = 25


def _deliver_worker(data_dir: str, url: str, user_id: int, worker: int, start,
                    results) -> None:
    """Runs in its own process: deliver PER_WORKER messages one by one."""
    out = []
    try:
        s = SqlStore.open_home(Path(data_dir), url)
        start.wait(30)
        for i in range(PER_WORKER):
            size = 500 + 97 * ((worker * PER_WORKER + i) % 23)
            ref = s.blobs.write(bytes([65 + worker]) * size)
            (res,) = s.deliver([Delivery(user_id, ref)])
            if isinstance(res, Delivered):
                out.append(("ok", ref.id, size, res.uid, res.message_id))
            elif isinstance(res, QuotaExceeded):
                out.append(("full", ref.id, size, 0, 0))
            else:
                out.append(("error", ref.id, size, 0, repr(res)))
        s.close()
    except Exception as e:  # noqa: BLE001 - reported to the test, not lost in a child
        out.append(("error", "", 0, 0, repr(e)))
    results.put(out)


def test_concurrent_writers_respect_quota_exactly(tmp_path, backend):
    data = tmp_path / "data"
    s = open_store(data, backend.url)
    s.add_domain(DOMAIN)
    u = add_user(s, quota=QUOTA)
    s.close()

    ctx = multiprocessing.get_context("spawn")
    workers = 4
    start, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_deliver_worker,
                         args=(str(data), backend.url, u.id, w, start, queue))
             for w in range(workers)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    start.set()
    results = [r for _ in procs for r in queue.get(timeout=120)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0

    assert not [r for r in results if r[0] == "error"], results
    ok = [r for r in results if r[0] == "ok"]
    full = [r for r in results if r[0] == "full"]
    offered = sum(r[2] for r in results)
    assert offered > QUOTA and ok and full             # the limit was really reached

    s = open_store(data, backend.url)
    try:
        user = s.get_user_by_id(u.id)
        accepted = sum(r[2] for r in ok)
        assert user.used_bytes == accepted <= QUOTA
        assert user.used_messages == len(ok)
        # Every refusal was a real one: it did not fit when it was tried.
        assert QUOTA - accepted < max(r[2] for r in full)
        rows = s.list_messages(s.get_folder(u.id, "INBOX").id)
        assert sorted(m.blob_id for m in rows) == sorted(r[1] for r in ok)   # none lost or doubled
        assert sorted(m.id for m in rows) == sorted(r[4] for r in ok)
        assert [m.uid for m in rows] == list(range(1, len(ok) + 1))          # unique, no gaps
        assert sorted(r[3] for r in ok) == [m.uid for m in rows]
        for m in rows[:5]:
            assert len(s.blobs.read(m.blob_id)) == m.size
    finally:
        s.close()
