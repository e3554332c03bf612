"""The webadmin's store queries on every backend: a page of users matching a
search (and fast at 10,000 users), usage per domain, every forward, the
audit log with its filters, and flushing one queued message."""
from __future__ import annotations

import time

from sqlalchemy import insert, select


from .conftest import DOMAIN


def _users(store, n: int, domain: str = DOMAIN):
    return [store.add_user(f"u{i:02d}@{domain}", password_hash="x", quota=0,
                           name=f"User {i}") for i in range(n)]


def test_find_users_pages_and_counts(store):
    _users(store, 12)
    store.add_domain("other.test")
    store.add_user("zed@other.test", password_hash="x", quota=0, name="Zed U05")
    page, total = store.find_users("", offset=5, limit=5)
    assert total == 13 and [u.address for u in page] == [f"u{i:02d}@{DOMAIN}" for i in range(5, 10)]
    page, total = store.find_users("U05")          # address or name, any case
    assert total == 2 and {u.address for u in page} == {f"u05@{DOMAIN}", "zed@other.test"}
    page, total = store.find_users("", "other.test")
    assert total == 1 and page[0].name == "Zed U05"
    page, total = store.find_users("100%_")        # LIKE's wildcards are literal text
    assert total == 0 and page == []


def test_domain_usage_and_forwards(store):
    a, b = _users(store, 2)
    store.add_domain("empty.test")
    store.set_forward(b.id, "far@remote.test", True)
    usage = {d.name: (d.users, d.used_bytes) for d in store.domain_usage()}
    assert usage == {DOMAIN: (2, 0), "empty.test": (0, 0)}
    [(addr, fwd)] = store.list_forwards()
    assert addr == b.address and fwd.target == "far@remote.test" and fwd.keep


def test_audit_log_filters_newest_first(store):
    t0 = time.time()
    store.audit_add(actor="admin@example.test", ip="127.0.0.1", action="user.add",
                    target="amy@example.test", new="quota=1G", at=t0 - 7200)
    store.audit_add(actor="admin@example.test", ip="::1", action="user.quota",
                    target="amy@example.test", old="1G", new="10M", at=t0 - 60)
    e = store.audit_add(actor="boss@example.test", ip="10.0.0.9", action="setting.set",
                        target="limits.max_message_size", old="50M", new="20M")
    entries, total = store.audit_list()
    assert total == 3 and entries[0] == e and entries[0].old == "50M"
    assert [x.action for x in entries] == ["setting.set", "user.quota", "user.add"]
    assert store.audit_list(action="user.")[1] == 2
    assert store.audit_list(actor="BOSS")[1] == 1
    assert store.audit_list(text="10m")[1] == 1                    # old or new, any case
    assert store.audit_list(since=t0 - 3600)[1] == 2
    page, total = store.audit_list(offset=1, limit=1)
    assert total == 3 and page[0].action == "user.quota"


def test_flush_one_queued_message(store):
    blob = store.blobs.write(b"Subject: x\r\n\r\nx\r\n")
    for qid in ("q1", "q2"):
        store.enqueue(queue_id=qid, blob=blob, sender="a@example.test", recipients=["b@far.test"])
        e = store.queue_get(qid)
        store.queue_update(qid, recipients=e.recipients, next_attempt=time.time() + 3600,
                           last_error="4.4.1 connection refused")
    assert store.queue_flush(time.time(), "q2") == 1
    due = {e.id: e.next_attempt <= time.time() for e in store.queue_list()}
    assert due == {"q1": False, "q2": True}


def test_find_users_stays_fast_at_ten_thousand_users(sql_store):
    from coremail.store.sql import schema as t
    with sql_store.engine.begin() as c:
        d = c.execute(select(t.domains.c.id).where(t.domains.c.name == DOMAIN)).scalar_one()
        c.execute(insert(t.users), [dict(address=f"user{i:05d}@{DOMAIN}", domain_id=d,
                                         name=f"Person {i}", password_hash="x", quota=1 << 30,
                                         used_bytes=i, used_messages=0, enabled=True,
                                         admin=False, created=0.0) for i in range(10_000)])
    for query, offset in (("", 0), ("", 9_950), ("person 99", 0), ("nobody", 0)):
        t0 = time.perf_counter()
        page, total = sql_store.find_users(query, offset=offset, limit=50)
        took = time.perf_counter() - t0
        assert took < 0.25, (query, offset, took)
    assert sql_store.find_users("", offset=9_950)[1] == 10_000
    assert sql_store.find_users("person 99")[1] == 111     # 99, 990-999, 9900-9999
    usage = sql_store.domain_usage()
    assert usage[0].users == 10_000 and usage[0].used_bytes == sum(range(10_000))


def test_an_empty_audit_log(store):
    assert store.audit_list() == ([], 0)
