"""The corners where SQLite and PostgreSQL disagree unless the SQL is careful:
LIKE wildcards and case, clamping below zero, lock order between writers.
Each test runs on both SQL backends and expects the same answer; the memory
store must give it too, except where a test reaches into SQL (sql_store)."""

from __future__ import annotations

import threading

from sqlalchemy import update

from coremail.store.interfaces import Delivered, Delivery
from coremail.store.sql import schema as t

from .conftest import DOMAIN
from .test_store import add_user, put, usage


def _names(store, user) -> list[str]:
    return sorted(f.name for f in store.list_folders(user.id))


def test_rename_folder_children_match_literally_and_case_sensitively(store):
    u = add_user(store)
    for name in ("a_b", "a_b/kid", "axb", "axb/kid", "100%", "100%/kid", "1000/kid",
                 "Work", "Work/kid", "work", "work/kid", "W\\k", "W\\k/kid", "Wxk/kid"):
        store.create_folder(u.id, name)
    store.rename_folder(u.id, "a_b", "ab")
    store.rename_folder(u.id, "100%", "pct")
    store.rename_folder(u.id, "Work", "Job")
    store.rename_folder(u.id, "W\\k", "Wk")
    assert {"ab/kid", "axb/kid", "pct/kid", "1000/kid", "Job/kid", "work/kid", "Wk/kid",
            "Wxk/kid"} <= set(_names(store, u))
    assert not {"a_b/kid", "100%/kid", "Work/kid", "W\\k/kid"} & set(_names(store, u))


def test_domain_aliases_match_the_domain_literally(store):
    for d in ("a_b.test", "axb.test", "x%y.test", "xzy.test"):
        store.add_domain(d)
        store.add_alias(f"sales@{d}", f"boss@{DOMAIN}")
    assert [a.address for a in store.list_aliases("a_b.test")] == ["sales@a_b.test"]
    assert [a.address for a in store.list_aliases("x%y.test")] == ["sales@x%y.test"]
    store.delete_domain("a_b.test")
    store.delete_domain("x%y.test")
    assert store.alias_targets("sales@axb.test") == [f"boss@{DOMAIN}"]
    assert store.alias_targets("sales@xzy.test") == [f"boss@{DOMAIN}"]
    assert store.alias_targets("sales@a_b.test") == []


def test_usage_never_goes_below_zero(sql_store):
    store = sql_store
    u = add_user(store)
    d = put(store, u, b"x" * 100)
    with store.engine.begin() as c:   # usage drifted low (say, an old bug)
        c.execute(update(t.users).where(t.users.c.id == u.id).values(used_bytes=10))
    store.expunge(d.folder_id, [d.uid])
    assert usage(store, u) == (0, 0)


def test_unseen_counts_a_literal_seen_flag(store):
    u = add_user(store)
    put(store, u, flags={"\\Seen"})
    put(store, u, flags={"\\Flagged"})
    put(store, u, flags={"Seen"})                   # a keyword, not \Seen
    inbox = next(f for f in store.list_folders(u.id, counts=True) if f.name == "INBOX")
    assert (inbox.messages, inbox.unseen) == (3, 2)


def test_batches_for_the_same_users_in_opposite_orders_do_not_deadlock(store):
    # PostgreSQL locks rows as it updates them: two batches charging users
    # A then B and B then A could each wait for the other.
    users = [add_user(store, n) for n in ("alice", "bob", "carol")]
    errors: list[object] = []
    start = threading.Barrier(2)

    def run(order):
        start.wait()
        for i in range(25):
            batch = [Delivery(u.id, store.blobs.write(b"m%d" % i)) for u in order]
            for res in store.deliver(batch):
                if not isinstance(res, Delivered):
                    errors.append(res)

    def guarded(order):
        try:
            run(order)
        except Exception as e:  # noqa: BLE001 - a deadlock error, shown by the assert
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(o,))
               for o in (users, list(reversed(users)))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    for u in users:
        assert usage(store, u)[1] == 50
        inbox = store.get_folder(u.id, "INBOX")
        assert store.message_uids(inbox.id) == list(range(1, 51))


def test_flag_changes_and_expunges_of_one_folder_at_once(store):
    # STORE in one IMAP session while another expunges the same folder: on
    # PostgreSQL both start with the user's row, so neither waits in a cycle.
    u = add_user(store)
    fid = store.get_folder(u.id, "INBOX").id
    for i in range(40):
        put(store, u, b"m%d" % i)
    errors: list[Exception] = []
    start = threading.Barrier(2)

    def flagger():
        start.wait()
        for i in range(20):
            store.set_flags(fid, list(range(1, 41)), frozenset({f"k{i}"}), "set")

    def expunger():
        start.wait()
        for uid in range(40, 0, -2):
            store.expunge(fid, [uid])

    def guarded(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - shown by the assert
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in (flagger, expunger)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert store.message_uids(fid) == list(range(1, 40, 2))
    assert usage(store, u)[1] == 20
