"""What several nodes share through the store, on every backend: leases,
failed logins, the nodes table, shared files; and on PostgreSQL the folder
change notifications sent by the trigger of migration 0011."""
from __future__ import annotations

import time

import pytest

from coremail.store.interfaces import Delivery


def test_lease_is_exclusive_until_released_or_expired(store):
    now = time.time()
    assert store.lease_acquire("pop3:1", "a", now + 60, now=now)
    assert not store.lease_acquire("pop3:1", "b", now + 60, now=now)
    assert store.lease_acquire("pop3:1", "a", now + 90, now=now)     # the holder again
    assert store.lease_acquire("pop3:2", "b", now + 60, now=now)
    assert store.lease_renew("a", now + 120) == 1
    assert store.lease_release("a") == 1
    assert store.lease_acquire("pop3:1", "b", now + 60, now=now)
    # an expired lease is taken over
    assert store.lease_acquire("pop3:1", "c", now + 60, now=now + 61)
    assert store.lease_release("b", "pop3:1") == 0
    assert store.lease_release("b", "pop3:2") == 1


def test_auth_failures_per_address_and_forgotten(store):
    store.auth_failure_add("192.0.2.1", 100.0, forget_before=0)
    store.auth_failure_add("192.0.2.1", 200.0, forget_before=0)
    store.auth_failure_add("192.0.2.2", 210.0, forget_before=0)
    assert store.auth_failures("192.0.2.1", 150.0) == [200.0]
    assert store.auth_failures("192.0.2.1", 0) == [100.0, 200.0]
    store.auth_failure_add("192.0.2.2", 300.0, forget_before=150.0)
    assert store.auth_failures("192.0.2.1", 0) == [200.0]
    assert store.auth_failures_clear() == 3
    assert store.auth_failures("192.0.2.2", 0) == []


def test_nodes_and_shared_files(store):
    store.node_beat("b.example.test", 10.0, [{"name": "smtp", "state": "running"}], now=20.0)
    store.node_beat("a.example.test", 11.0, [], now=21.0)
    store.node_beat("b.example.test", 10.0, [{"name": "smtp", "state": "stopped"}], now=30.0)
    nodes = store.node_list()
    assert [n.hostname for n in nodes] == ["a.example.test", "b.example.test"]
    assert nodes[1].heartbeat == 30.0 and nodes[1].services[0]["state"] == "stopped"
    store.shared_file_put("tls/cert.pem", b"one", 5.0)
    store.shared_file_put("tls/cert.pem", b"two\x00", 6.0)
    assert store.shared_files() == {"tls/cert.pem": (b"two\x00", 6.0)}


def test_folder_changes_notify_other_connections(sql_store):
    feed = sql_store.folder_changes()
    if not sql_store.shared:
        assert feed is None     # SQLite: IMAP IDLE polls
        return
    try:
        from coremail.services.accounts import Accounts
        user = Accounts(sql_store, "example.test").add_user("n@example.test", "pw-123456789")
        inbox = sql_store.get_folder(user.id, "INBOX")
        assert feed.wait(0.05) == set()
        blob = sql_store.blobs.write(b"Subject: x\r\n\r\nbody\r\n")
        t0 = time.monotonic()
        sql_store.deliver([Delivery(user.id, blob)])
        assert feed.wait(2.0) == {inbox.id}
        assert time.monotonic() - t0 < 1.0
    finally:
        feed.close()


@pytest.mark.parametrize("n", [3])
def test_concurrent_migrations_run_once(pg_cluster, tmp_path, n):
    """Several nodes starting at once: the advisory lock makes one upgrade
    and the others find the schema done (no duplicate-table errors)."""
    import threading

    from coremail.store.sql.store import SqlStore
    url = pg_cluster.new_database()
    errors: list[BaseException] = []

    def one(i):
        s = SqlStore.open_home(tmp_path / f"d{i}", url)
        try:
            s.migrate()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            s.close()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    s = SqlStore.open_home(tmp_path / "check", url)
    try:
        s.add_domain("example.test")
        assert [d.name for d in s.list_domains()] == ["example.test"]
    finally:
        s.close()


def test_web_sessions(store):
    store.web_session_put("k1", 7, "csrf1", 100.0, now=50.0)
    store.web_session_put("k2", 8, "csrf2", 300.0, now=50.0)
    assert store.web_session_get("k1") == (7, "csrf1", 100.0)
    store.web_session_put("k3", 9, "csrf3", 400.0, now=200.0)   # k1 expired: forgotten
    assert store.web_session_get("k1") is None
    store.web_session_delete("k2")
    assert store.web_session_get("k2") is None
    assert store.web_session_get("k3") == (9, "csrf3", 400.0)
