"""The Store's behaviour on every backend (conftest.py: SQLite in WAL mode in
a temp dir, a real PostgreSQL, and the memory store): accounts, folders,
messages, flags, quota, blob references and the queue (several processes at
once: test_concurrency.py; schema upgrades: test_migrations.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from coremail.store.interfaces import (
    AlreadyExists,
    Delivered,
    Delivery,
    NotFound,
    QueueRecipient,
    QuotaExceeded,
    StoreError,
)
from coremail.store.sql.store import SqlStore

from .conftest import DOMAIN


def open_store(data: Path, url: str = "") -> SqlStore:
    s = SqlStore.open_home(data, url)
    s.migrate()
    return s


@pytest.fixture
def sqlite_store(tmp_path):
    s = open_store(tmp_path / "data")
    yield s
    s.close()


def add_user(store, local="alice", quota=0, **kw):
    return store.add_user(f"{local}@{DOMAIN}", password_hash="$argon2id$fake", quota=quota, **kw)


def put(store, user, data: bytes = b"Subject: hi\r\n\r\nhello\r\n", folder="INBOX",
        flags=frozenset(), **kw) -> Delivered:
    ref = store.blobs.write(data)
    (res,) = store.deliver([Delivery(user.id, ref, folder=folder, flags=frozenset(flags), **kw)])
    if isinstance(res, StoreError):
        raise res
    return res


def usage(store, user) -> tuple[int, int]:
    u = store.get_user_by_id(user.id)
    return u.used_bytes, u.used_messages


def blob_exists(store, blob_id) -> bool:
    return store.blobs.path(blob_id).exists()


def purge(store) -> int:
    """Purge every removal at once (no grace time): what the sweep does later."""
    return store.purge_removed(grace=0)


# ---------------------------------------------------------------- engine
def test_sqlite_runs_in_wal_mode(sqlite_store):
    with sqlite_store.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_migrate_is_idempotent(tmp_path, backend):
    s = open_store(tmp_path / "data", backend.url)
    s.add_domain(DOMAIN)
    s.migrate()
    s.close()
    s = open_store(tmp_path / "data", backend.url)
    assert [d.name for d in s.list_domains()] == [DOMAIN]
    s.close()


# ---------------------------------------------------------------- domains
def test_domains(store):
    store.add_domain("b.test")
    store.add_domain("a.test")
    assert [d.name for d in store.list_domains()] == ["a.test", "b.test", DOMAIN]
    assert store.get_domain("a.test").name == "a.test"
    assert store.get_domain("nowhere.test") is None
    with pytest.raises(AlreadyExists, match="a.test"):
        store.add_domain("a.test")
    store.delete_domain("a.test")
    assert store.get_domain("a.test") is None
    with pytest.raises(NotFound, match="a.test"):
        store.delete_domain("a.test")


def test_domain_with_users_cannot_be_deleted_and_its_aliases_go_with_it(store):
    store.add_domain("other.test")
    store.add_alias("info@other.test", "someone@remote.test")
    store.add_alias("info@example.test", "someone@remote.test")
    add_user(store)
    with pytest.raises(StoreError, match="still has 1 user"):
        store.delete_domain(DOMAIN)
    assert store.get_domain(DOMAIN) is not None
    store.delete_domain("other.test")
    assert [a.address for a in store.list_aliases()] == ["info@example.test"]


# ---------------------------------------------------------------- users
def test_users(store):
    u = add_user(store, quota=1000, name="Alice A", admin=True)
    assert (u.address, u.domain, u.name, u.quota, u.admin, u.enabled) == (
        "alice@example.test", DOMAIN, "Alice A", 1000, True, True)
    assert (u.used_bytes, u.used_messages) == (0, 0)
    assert u.password_hash == "$argon2id$fake"
    assert store.get_user("alice@example.test") == u
    assert store.get_user_by_id(u.id) == u
    assert store.get_user("bob@example.test") is None
    assert store.get_user_by_id(u.id + 100) is None

    with pytest.raises(AlreadyExists, match="alice@example.test"):
        add_user(store)
    with pytest.raises(NotFound, match="nowhere.test"):
        store.add_user("x@nowhere.test", password_hash="h", quota=0)

    store.add_domain("other.test")
    store.add_user("zed@other.test", password_hash="h", quota=0)
    add_user(store, "bob")
    assert [x.address for x in store.list_users()] == [
        "alice@example.test", "bob@example.test", "zed@other.test"]
    assert [x.address for x in store.list_users(DOMAIN)] == [
        "alice@example.test", "bob@example.test"]
    assert store.list_users("nowhere.test") == []


def test_update_user(store):
    u = add_user(store)
    v = store.update_user(u.address, name="Al", quota=5, enabled=False, admin=True,
                          password_hash="new")
    assert (v.name, v.quota, v.enabled, v.admin, v.password_hash) == ("Al", 5, False, True, "new")
    assert store.get_user(u.address) == v
    with pytest.raises(NotFound):
        store.update_user("bob@example.test", name="x")
    with pytest.raises(ValueError, match="used_bytes"):
        store.update_user(u.address, used_bytes=0)


def test_delete_user_removes_everything(store):
    u = add_user(store)
    bob = add_user(store, "bob")
    d1 = put(store, u, b"one")
    shared = store.blobs.write(b"shared by alice and bob")
    store.deliver([Delivery(u.id, shared), Delivery(bob.id, shared)])
    store.set_forward(u.id, "x@remote.test", True)
    store.set_setting(u.address, "signature", "-- A")
    own_blob = store.get_message(d1.message_id).blob_id

    store.delete_user(u.address)
    assert store.get_user(u.address) is None
    assert store.list_folders(u.id) == []
    assert store.get_message(d1.message_id) is None
    assert store.get_forward(u.id) is None
    assert store.get_setting(u.address, "signature") is None
    assert blob_exists(store, own_blob)               # until the purge
    purge(store)
    assert not blob_exists(store, own_blob)
    assert blob_exists(store, shared.id)              # bob still has it
    with pytest.raises(NotFound):
        store.delete_user(u.address)


def test_user_ids_are_not_reused(store):
    u = add_user(store)
    store.delete_user(u.address)
    v = add_user(store)
    assert v.id != u.id


# ---------------------------------------------------------------- aliases, forwards, settings
def test_aliases(store):
    store.add_alias("sales@example.test", "alice@example.test")
    store.add_alias("sales@example.test", "bob@example.test")
    store.add_alias("info@example.test", "carol@remote.test")
    with pytest.raises(AlreadyExists):
        store.add_alias("sales@example.test", "bob@example.test")
    with pytest.raises(NotFound, match="nowhere.test"):
        store.add_alias("x@nowhere.test", "alice@example.test")
    assert store.alias_targets("sales@example.test") == ["alice@example.test", "bob@example.test"]
    assert store.alias_targets("nobody@example.test") == []
    assert [(a.address, a.target) for a in store.list_aliases()] == [
        ("info@example.test", "carol@remote.test"),
        ("sales@example.test", "alice@example.test"),
        ("sales@example.test", "bob@example.test")]
    store.add_domain("other.test")
    store.add_alias("x@other.test", "alice@example.test")
    assert [a.address for a in store.list_aliases("other.test")] == ["x@other.test"]
    assert store.delete_alias("sales@example.test", "bob@example.test") == 1
    assert store.alias_targets("sales@example.test") == ["alice@example.test"]
    assert store.delete_alias("info@example.test") == 1
    assert store.delete_alias("info@example.test") == 0


def test_forwards(store):
    u = add_user(store)
    assert store.get_forward(u.id) is None
    assert store.clear_forward(u.id) is False
    store.set_forward(u.id, "a@remote.test", False)
    f = store.get_forward(u.id)
    assert (f.user_id, f.target, f.keep) == (u.id, "a@remote.test", False)
    store.set_forward(u.id, "b@remote.test", True)      # replaces, never two
    f = store.get_forward(u.id)
    assert (f.target, f.keep) == ("b@remote.test", True)
    assert store.clear_forward(u.id) is True
    assert store.get_forward(u.id) is None


def test_settings(store):
    assert store.get_setting("", "motd") is None
    store.set_setting("", "motd", "hello")
    store.set_setting("alice@example.test", "motd", "mine")
    assert store.get_setting("", "motd") == "hello"
    assert store.get_setting("alice@example.test", "motd") == "mine"
    store.set_setting("", "motd", "again")
    assert store.get_setting("", "motd") == "again"
    store.set_setting("", "motd", None)
    assert store.get_setting("", "motd") is None
    assert store.get_setting("alice@example.test", "motd") == "mine"


# ---------------------------------------------------------------- folders
def test_new_user_gets_the_special_folders(store):
    u = add_user(store)
    folders = store.list_folders(u.id)
    assert [(f.name, f.special_use) for f in folders] == [
        ("INBOX", None), ("Drafts", "\\Drafts"), ("Sent", "\\Sent"),
        ("Junk", "\\Junk"), ("Trash", "\\Trash")]
    for f in folders:
        assert f.user_id == u.id and f.recent_uid == 0 and f.uidnext == 1
        assert 0 < f.uidvalidity < 2 ** 32
    assert sorted(store.list_subscriptions(u.id)) == sorted(f.name for f in folders)
    assert store.get_folder(u.id, "inbox").name == "INBOX"
    assert store.get_folder(u.id, "Inbox").id == folders[0].id
    assert store.get_folder(u.id, "Nope") is None
    assert store.get_folder_by_id(folders[1].id).name == "Drafts"
    assert store.list_folders(add_user(store, "bob").id)[0].id not in {f.id for f in folders}


def test_create_rename_delete_folders(store):
    u = add_user(store)
    work = store.create_folder(u.id, "Work")
    store.create_folder(u.id, "Work/2024")
    store.create_folder(u.id, "Workshop")
    with pytest.raises(AlreadyExists):
        store.create_folder(u.id, "Work")
    assert work.uidnext == 1 and work.special_use is None
    store.rename_folder(u.id, "Work", "Job")
    names = {f.name for f in store.list_folders(u.id)}
    assert {"Job", "Job/2024", "Workshop"} <= names and "Work" not in names
    with pytest.raises(AlreadyExists):
        store.rename_folder(u.id, "Job", "Sent")
    with pytest.raises(NotFound):
        store.rename_folder(u.id, "Nope", "Other")
    with pytest.raises(StoreError, match="INBOX"):
        store.rename_folder(u.id, "INBOX", "Old")
    with pytest.raises(StoreError, match="INBOX"):
        store.delete_folder(u.id, "inbox")
    with pytest.raises(NotFound):
        store.delete_folder(u.id, "Nope")
    store.delete_folder(u.id, "Job")
    assert store.get_folder(u.id, "Job") is None


def test_subscriptions_are_names(store):
    u = add_user(store)
    store.create_folder(u.id, "Work")
    store.create_folder(u.id, "Work/2024")
    assert "Work" not in store.list_subscriptions(u.id)    # CREATE does not subscribe
    store.set_subscribed(u.id, "Work", True)
    store.set_subscribed(u.id, "Work/2024", True)
    store.set_subscribed(u.id, "Nope/Never", True)         # a name without a folder
    store.set_subscribed(u.id, "Nope/Never", True)         # twice is once
    store.set_subscribed(u.id, "INBOX", False)
    store.set_subscribed(u.id, "Gone", False)               # not subscribed: nothing to do
    assert store.list_subscriptions(u.id) == ["Drafts", "Junk", "Nope/Never", "Sent", "Trash",
                                              "Work", "Work/2024"]
    store.rename_folder(u.id, "Work", "Job")                # subscriptions follow a rename
    store.delete_folder(u.id, "Job/2024")                   # and outlive a delete
    subs = store.list_subscriptions(u.id)
    assert "Job" in subs and "Job/2024" in subs and "Work" not in subs
    assert store.list_subscriptions(add_user(store, "bob").id) != subs


def test_recent_is_claimed_once(store):
    u = add_user(store)
    f = store.get_folder(u.id, "INBOX")
    assert store.claim_recent(f.id, 3) == 0                 # UIDs 1..3 are this caller's
    assert store.claim_recent(f.id, 3) == 3                 # nothing left for the next
    assert store.claim_recent(f.id, 2) == 3                 # the mark never goes back
    assert store.claim_recent(f.id, 5) == 3
    assert store.get_folder_by_id(f.id).recent_uid == 5


def test_rename_under_itself_and_onto_a_taken_child_name(store):
    u = add_user(store)
    for name in ("X", "X/kid", "A", "A/k", "B/k"):
        store.create_folder(u.id, name)
    store.rename_folder(u.id, "X", "X/y")               # each folder moves once
    names = {f.name for f in store.list_folders(u.id)}
    assert {"X/y", "X/y/kid"} <= names and not {"X", "X/kid", "X/y/y"} & names
    with pytest.raises(AlreadyExists, match="under B"):
        store.rename_folder(u.id, "A", "B")             # A/k -> B/k is taken
    assert {"A", "A/k", "B/k"} <= {f.name for f in store.list_folders(u.id)}
    assert store.get_folder(u.id, "B") is None


def test_deleting_a_folder_frees_its_quota_and_blobs(store):
    u = add_user(store, quota=1000)
    store.create_folder(u.id, "Old")
    d = put(store, u, b"x" * 100, folder="Old")
    put(store, u, b"y" * 10)
    blob = store.get_message(d.message_id).blob_id
    assert usage(store, u) == (110, 2)
    store.delete_folder(u.id, "Old")
    assert usage(store, u) == (10, 1)
    purge(store)
    assert not blob_exists(store, blob)


def test_recreated_folder_gets_a_new_uidvalidity(store):
    # IMAP clients cache by (name, UIDVALIDITY): a folder deleted and made
    # again with UIDs restarting at 1 must not look like the old one.
    u = add_user(store)
    old = store.create_folder(u.id, "Project")
    put(store, u, folder="Project")
    store.delete_folder(u.id, "Project")
    new = store.create_folder(u.id, "Project")
    assert new.uidnext == 1
    assert new.uidvalidity > old.uidvalidity


def test_recreated_user_gets_new_uidvalidities(store):
    u = add_user(store)
    before = {f.name: f.uidvalidity for f in store.list_folders(u.id)}
    store.delete_user(u.address)
    v = add_user(store)
    after = {f.name: f.uidvalidity for f in store.list_folders(v.id)}
    for name in before:
        assert after[name] > before[name], name


def test_folder_counts(store):
    u = add_user(store)
    put(store, u, b"12345")
    put(store, u, b"123", flags={"\\Seen"})
    put(store, u, b"1", flags={"\\Flagged"})
    counts = {f.name: (f.messages, f.unseen, f.size) for f in store.list_folders(u.id, counts=True)}
    assert counts["INBOX"] == (3, 2, 9)
    assert counts["Trash"] == (0, 0, 0)


# ---------------------------------------------------------------- messages
def test_deliver_and_read_back(store):
    u = add_user(store)
    inbox = store.get_folder(u.id, "INBOX")
    d1 = put(store, u, b"first", flags={"\\Seen"}, internaldate=1_000_000.0,
             meta={"subject": "one"})
    d2 = put(store, u, b"second!")
    assert (d1.uid, d2.uid) == (1, 2) and d1.folder_id == inbox.id
    msgs = store.list_messages(inbox.id)
    assert [m.uid for m in msgs] == [1, 2]
    m1 = msgs[0]
    assert (m1.id, m1.size, m1.flags, m1.internaldate) == (
        d1.message_id, 5, frozenset({"\\Seen"}), 1_000_000.0)
    assert m1.meta is None
    assert store.list_messages(inbox.id, with_meta=True)[0].meta == {"subject": "one"}
    assert store.blobs.read(m1.blob_id) == b"first"
    assert [m.uid for m in store.list_messages(inbox.id, since_uid=1)] == [2]
    assert [m.uid for m in store.get_messages(inbox.id, [2, 1, 99])] == [1, 2]
    assert store.get_message(d2.message_id).size == 7
    assert store.get_message(d2.message_id + 1000) is None
    assert abs(store.get_message(d2.message_id).internaldate - time.time()) < 60
    assert store.get_folder(u.id, "INBOX").uidnext == 3


def test_folder_counts_of_some_folders(store):
    u = add_user(store)
    inbox, sent = store.get_folder(u.id, "INBOX"), store.get_folder(u.id, "Sent")
    put(store, u, b"12345", flags={"\\Seen"})
    put(store, u, b"123")
    assert store.folder_counts([inbox.id, sent.id]) == {inbox.id: (2, 1, 8), sent.id: (0, 0, 0)}
    assert [(f.messages, f.unseen, f.size) for f in store.list_folders(u.id, counts=True)
            if f.id == inbox.id] == [(2, 1, 8)]


def test_page_messages_newest_first(store):
    u = add_user(store)
    inbox = store.get_folder(u.id, "INBOX")
    for i in range(7):
        put(store, u, b"m%d" % i, meta={"subject": f"s{i}"})
    store.expunge(inbox.id, [3])
    page = store.page_messages(inbox.id, limit=3)
    assert [m.uid for m in page] == [7, 6, 5] and page[0].meta == {"subject": "s6"}
    assert [m.uid for m in store.page_messages(inbox.id, limit=3, offset=3)] == [4, 2, 1]
    assert [m.uid for m in store.page_messages(inbox.id, limit=3, before_uid=5)] == [4, 2, 1]
    assert [m.uid for m in store.page_messages(inbox.id, limit=2, before_uid=5, offset=1)] == [2, 1]
    assert store.page_messages(inbox.id, limit=3, offset=10) == []


def test_deliver_batch_reports_each_result(store):
    u = add_user(store, quota=10)
    a = store.blobs.write(b"12345678")
    b = store.blobs.write(b"123")
    res = store.deliver([Delivery(u.id, a), Delivery(u.id, b, folder="Nope"),
                         Delivery(u.id, b), Delivery(u.id, b, folder="Sent")])
    assert isinstance(res[0], Delivered)
    assert isinstance(res[1], NotFound) and "Nope" in res[1].text
    assert isinstance(res[2], QuotaExceeded) and (res[2].code, res[2].enhanced) == (552, "5.2.2")
    assert isinstance(res[3], QuotaExceeded)
    assert usage(store, u) == (8, 1)


def test_deliver_all_or_none(store):
    u = add_user(store, quota=10)
    a, b = store.blobs.write(b"12345678"), store.blobs.write(b"123")
    inbox = store.get_folder(u.id, "INBOX")
    res = store.deliver([Delivery(u.id, a), Delivery(u.id, b)], all_or_none=True)
    assert all(isinstance(r, QuotaExceeded) for r in res)          # 11 > 10: neither
    res = store.deliver([Delivery(u.id, b), Delivery(u.id, b, folder="Nope")], all_or_none=True)
    assert len(res) == 2 and all(isinstance(r, NotFound) for r in res)
    assert usage(store, u) == (0, 0) and store.message_uids(inbox.id) == []
    assert store.get_folder_by_id(inbox.id).highestmodseq == inbox.highestmodseq
    res = store.deliver([Delivery(u.id, a), Delivery(u.id, b, check_quota=False)], all_or_none=True)
    assert [r.uid for r in res] == [1, 2] and usage(store, u) == (11, 2)


def test_set_flags_and_modseq(store):
    u = add_user(store)
    d1, _ = put(store, u), put(store, u)
    fid = d1.folder_id
    hms = store.get_folder_by_id(fid).highestmodseq
    ch = store.set_flags(fid, [1, 2], frozenset({"\\Seen"}), "add")
    assert [m.uid for m in ch] == [1, 2]
    assert all(m.flags == {"\\Seen"} for m in ch)
    # one modseq for the command (RFC 7162: each STORE gets its own)
    assert ch[0].modseq > hms and ch[1].modseq == ch[0].modseq
    assert store.get_folder_by_id(fid).highestmodseq == ch[1].modseq
    # Nothing changes: nothing reported, no modseq spent.
    assert store.set_flags(fid, [1, 2], frozenset({"\\Seen"}), "add") == []
    assert store.get_folder_by_id(fid).highestmodseq == ch[1].modseq
    ch2 = store.set_flags(fid, [1], frozenset({"\\Flagged", "$Work"}), "add")
    assert ch2[0].flags == {"\\Seen", "\\Flagged", "$Work"}
    ch3 = store.set_flags(fid, [1], frozenset({"\\Seen"}), "remove")
    assert ch3[0].flags == {"\\Flagged", "$Work"}
    ch4 = store.set_flags(fid, [1, 2], frozenset({"\\Answered"}), "set")
    assert {m.uid: m.flags for m in ch4} == {1: {"\\Answered"}, 2: {"\\Answered"}}
    assert store.get_message(d1.message_id).flags == {"\\Answered"}
    # CONDSTORE: a message modified after unchanged_since is left alone.
    store.set_flags(fid, [2], frozenset({"\\Draft"}), "add")
    m1, m2 = store.get_messages(fid, [1, 2])
    ch5 = store.set_flags(fid, [1, 2], frozenset({"\\Deleted"}), "add",
                          unchanged_since=min(m1.modseq, m2.modseq))
    assert [m.uid for m in ch5] == [min((m1, m2), key=lambda m: m.modseq).uid]


def test_expunge_frees_quota_and_uids_are_never_reused(store):
    u = add_user(store)
    ds = [put(store, u, b"x" * n) for n in (10, 20, 30)]
    fid = ds[0].folder_id
    hms = store.get_folder_by_id(fid).highestmodseq
    blob3 = store.get_message(ds[2].message_id).blob_id
    assert store.expunge(fid, [3, 1, 42]) == [1, 3]
    assert usage(store, u) == (20, 1)
    assert store.get_folder_by_id(fid).highestmodseq > hms
    assert blob_exists(store, blob3)                     # kept until the purge
    purge(store)
    assert not blob_exists(store, blob3)
    assert store.expunge(fid, [3]) == []
    d4 = put(store, u, b"new")
    assert d4.uid == 4                                   # not 3, not 1
    assert [m.uid for m in store.list_messages(fid)] == [2, 4]


def test_message_ids_are_never_reused(store):
    # POP3 UIDLs derive from message ids: a new message must never take the id
    # of one a client has already seen and deleted.
    u = add_user(store)
    d1 = put(store, u)
    store.expunge(d1.folder_id, [d1.uid])
    d2 = put(store, u)
    assert d2.message_id != d1.message_id
    store.delete_messages(u.id, [d2.message_id])
    d3 = put(store, u)
    assert d3.message_id not in (d1.message_id, d2.message_id)


def test_delete_messages_by_id(store):
    u = add_user(store)
    bob = add_user(store, "bob")
    a, b = put(store, u, b"aaaa"), put(store, u, b"bb", folder="Sent")
    other = put(store, bob, b"bob's")
    hms = store.get_folder_by_id(a.folder_id).highestmodseq
    # Another user's message id is not this user's to delete.
    assert store.delete_messages(u.id, [a.message_id, b.message_id, other.message_id]) == 2
    assert usage(store, u) == (0, 0)
    assert store.get_message(other.message_id) is not None
    assert store.get_folder_by_id(a.folder_id).highestmodseq > hms
    assert store.delete_messages(u.id, [a.message_id]) == 0


def test_copy_and_move(store):
    u = add_user(store, quota=100)
    put(store, u, b"x" * 10, flags={"\\Seen"}, internaldate=1234.0)
    put(store, u, b"y" * 20)
    inbox = store.get_folder(u.id, "INBOX")
    arch = store.create_folder(u.id, "Archive")
    trash = store.get_folder(u.id, "Trash")

    assert store.copy_messages(inbox.id, [1, 2, 77], arch.id) == [(1, 1), (2, 2)]
    assert usage(store, u) == (60, 4)                    # a copy is charged
    c1 = store.get_messages(arch.id, [1])[0]
    o1 = store.get_messages(inbox.id, [1])[0]
    assert (c1.flags, c1.internaldate, c1.blob_id, c1.size) == (
        o1.flags, o1.internaldate, o1.blob_id, o1.size)  # same blob, not a new file
    assert c1.id != o1.id
    assert store.get_folder_by_id(arch.id).uidnext == 3

    assert store.copy_messages(arch.id, [2], trash.id, move=True) == [(2, 1)]
    assert usage(store, u) == (60, 4)                    # a move is not
    assert [m.uid for m in store.list_messages(arch.id)] == [1]
    assert [m.uid for m in store.list_messages(trash.id)] == [1]
    assert store.copy_messages(arch.id, [2], trash.id) == []   # gone from there

    # Deleting the original keeps the copy's blob.
    store.expunge(inbox.id, [1])
    assert store.blobs.read(c1.blob_id) == b"x" * 10
    with pytest.raises(NotFound):
        store.copy_messages(inbox.id, [2], 999_999)


def test_copy_over_quota_changes_nothing(store):
    u = add_user(store, quota=50)
    put(store, u, b"x" * 20)
    put(store, u, b"y" * 20)
    inbox = store.get_folder(u.id, "INBOX")
    arch = store.create_folder(u.id, "Archive")
    with pytest.raises(QuotaExceeded):
        store.copy_messages(inbox.id, [1, 2], arch.id)
    assert usage(store, u) == (40, 2)
    assert store.list_messages(arch.id) == []
    assert store.get_folder_by_id(arch.id).uidnext == 1
    # Moving needs no room.
    assert store.copy_messages(inbox.id, [1, 2], arch.id, move=True) == [(1, 1), (2, 2)]
    assert usage(store, u) == (40, 2)


# ---------------------------------------------------------------- quota
def test_quota_accounting_is_exact(store):
    u = add_user(store, quota=1000)
    sizes = [100, 250, 1, 49]
    ds = [put(store, u, b"m" * n) for n in sizes]
    assert usage(store, u) == (400, 4)
    inbox = store.get_folder(u.id, "INBOX")
    arch = store.create_folder(u.id, "Arch")
    store.copy_messages(inbox.id, [1, 2], arch.id)
    assert usage(store, u) == (750, 6)
    store.copy_messages(arch.id, [1], inbox.id, move=True)
    assert usage(store, u) == (750, 6)
    store.expunge(inbox.id, [2])
    assert usage(store, u) == (500, 5)
    store.delete_messages(u.id, [ds[2].message_id])
    assert usage(store, u) == (499, 4)
    store.delete_folder(u.id, "Arch")                   # holds the 250 copy
    assert usage(store, u) == (249, 3)
    remaining = store.list_messages(inbox.id)
    assert sum(m.size for m in remaining) == 249 and len(remaining) == 3
    store.expunge(inbox.id, [m.uid for m in remaining])
    assert usage(store, u) == (0, 0)


def test_quota_exceeded_at_the_limit(store):
    u = add_user(store, quota=100)
    put(store, u, b"a" * 60)
    put(store, u, b"b" * 40)                            # exactly full is allowed
    assert usage(store, u) == (100, 2)
    with pytest.raises(QuotaExceeded) as e:
        put(store, u, b"c")
    assert e.value.code == 552
    assert usage(store, u) == (100, 2)
    assert store.get_folder(u.id, "INBOX").uidnext == 3  # no uid spent on a refusal
    # Deliveries that must not bounce (e.g. a copy into Sent) may skip the check.
    put(store, u, b"d" * 5, folder="Sent", check_quota=False)
    assert usage(store, u) == (105, 3)
    # Raising the quota makes room at once.
    store.update_user(u.address, quota=200)
    put(store, u, b"e" * 95)
    assert usage(store, u) == (200, 4)


def test_zero_quota_is_unlimited(store):
    u = add_user(store, quota=0)
    put(store, u, b"z" * 100_000)
    assert usage(store, u) == (100_000, 1)


# ---------------------------------------------------------------- shared blobs
def test_shared_blob_is_deleted_with_its_last_reference(store):
    alice, bob, carol = add_user(store), add_user(store, "bob"), add_user(store, "carol")
    ref = store.blobs.write(b"one message to three people")
    res = store.deliver([Delivery(alice.id, ref), Delivery(bob.id, ref), Delivery(carol.id, ref)])
    assert all(isinstance(r, Delivered) for r in res)
    store.enqueue(queue_id="Q1", blob=ref, sender="alice@example.test",
                  recipients=["x@remote.test"])

    store.expunge(res[0].folder_id, [res[0].uid])
    assert blob_exists(store, ref.id)
    store.delete_messages(bob.id, [res[1].message_id])
    assert blob_exists(store, ref.id)
    store.delete_user(carol.address)
    assert blob_exists(store, ref.id)                   # the queue still needs it
    purge(store)
    assert blob_exists(store, ref.id)                   # still: the queue
    assert store.queue_delete("Q1") is True
    assert not blob_exists(store, ref.id)


def test_queue_delete_keeps_a_blob_a_mailbox_uses(store):
    u = add_user(store)
    ref = store.blobs.write(b"sent and kept")
    (d,) = store.deliver([Delivery(u.id, ref, folder="Sent")])
    store.enqueue(queue_id="Q2", blob=ref, sender=u.address, recipients=["x@remote.test"])
    store.queue_delete("Q2")
    assert store.blobs.read(ref.id) == b"sent and kept"
    store.expunge(d.folder_id, [d.uid])
    purge(store)
    assert not blob_exists(store, ref.id)


# ---------------------------------------------------------------- removals and views
def test_a_removed_blob_stays_while_a_live_view_predates_the_removal(store):
    u = add_user(store)
    d = put(store, u, b"read by a session that was not told yet")
    blob = store.get_message(d.message_id).blob_id
    seen = store.get_folder_by_id(d.folder_id).highestmodseq
    store.publish_views("host:1:a", {d.folder_id: seen}, until=time.time() + 60)
    store.publish_views("host:2:b", {d.folder_id: seen + 100}, until=time.time() + 60)
    store.expunge(d.folder_id, [d.uid])
    after = store.get_folder_by_id(d.folder_id).highestmodseq
    assert purge(store) == 0 and store.blobs.read(blob).startswith(b"read by")
    store.publish_views("host:1:a", {d.folder_id: after - 1}, until=time.time() + 60)
    assert purge(store) == 0 and blob_exists(store, blob)
    store.publish_views("host:1:a", {d.folder_id: after}, until=time.time() + 60)  # told now
    assert purge(store) == 1 and not blob_exists(store, blob)


def test_views_count_only_while_their_lease_runs_and_until_dropped(store):
    u = add_user(store)
    d1, d2 = put(store, u, b"one"), put(store, u, b"two")
    b1, b2 = (store.get_message(d.message_id).blob_id for d in (d1, d2))
    store.publish_views("dead:1:a", {d1.folder_id: 1}, until=time.time() - 1)   # lapsed
    store.publish_views("live:1:b", {d1.folder_id: 1}, until=time.time() + 60)
    store.expunge(d1.folder_id, [d1.uid, d2.uid])
    assert purge(store) == 0
    store.drop_views("live:1:b")
    assert purge(store) == 2 and not blob_exists(store, b1) and not blob_exists(store, b2)


def test_a_fresh_removal_waits_for_the_grace_time(store):
    u = add_user(store)
    d = put(store, u, b"just expunged")
    blob = store.get_message(d.message_id).blob_id
    store.expunge(d.folder_id, [d.uid])
    assert store.purge_removed() == 0 and blob_exists(store, blob)   # no view yet may be late
    assert store.purge_removed(now=time.time() + 3600) == 1 and not blob_exists(store, blob)


def test_a_moved_then_expunged_message_is_kept_for_a_view_of_its_first_folder(store):
    u = add_user(store)
    store.create_folder(u.id, "Archive")
    d = put(store, u, b"moved away")
    blob = store.get_message(d.message_id).blob_id
    inbox = store.get_folder_by_id(d.folder_id)
    archive = store.get_folder(u.id, "Archive")
    store.publish_views("host:1:a", {inbox.id: inbox.highestmodseq}, until=time.time() + 60)
    ((_, new_uid),) = store.copy_messages(inbox.id, [d.uid], archive.id, move=True)
    store.expunge(archive.id, [new_uid])
    assert purge(store) == 0 and blob_exists(store, blob)     # the INBOX view may fetch it
    store.publish_views("host:1:a", {}, until=time.time() + 60)
    assert purge(store) == 1 and not blob_exists(store, blob)


def test_deleted_folders_users_and_pop3_deletions_are_held_by_views_too(store):
    u, bob = add_user(store), add_user(store, "bob")
    store.create_folder(u.id, "Old")
    d_old = put(store, u, b"in a folder deleted", folder="Old")
    d_pop = put(store, u, b"deleted by POP3")
    d_bob = put(store, bob, b"of a user deleted")
    blobs = [store.get_message(d.message_id).blob_id for d in (d_old, d_pop, d_bob)]
    views = {d.folder_id: store.get_folder_by_id(d.folder_id).highestmodseq
             for d in (d_old, d_pop, d_bob)}
    store.publish_views("host:1:a", views, until=time.time() + 60)
    store.delete_folder(u.id, "Old")
    store.delete_messages(u.id, [d_pop.message_id])
    store.delete_user(bob.address)
    assert purge(store) == 0 and all(blob_exists(store, b) for b in blobs)
    store.drop_views("host:1:a")
    assert purge(store) == 3 and not any(blob_exists(store, b) for b in blobs)


# ---------------------------------------------------------------- queue
def due(store, now: float) -> list[str]:
    """Ids of the entries whose next attempt has come, oldest first."""
    return [e.id for e in store.queue_list() if e.next_attempt <= now]


def test_queue(store):
    b1 = store.blobs.write(b"message one")
    e1 = store.enqueue(queue_id="A1", blob=b1, sender="alice@example.test",
                       recipients=["b@remote.test", "a@remote.test", "b@remote.test"])
    assert (e1.id, e1.blob_id, e1.sender, e1.attempts, e1.last_error, e1.kind, e1.size) == (
        "A1", b1.id, "alice@example.test", 0, "", "out", len(b"message one"))
    assert [r.address for r in e1.recipients] == ["a@remote.test", "b@remote.test"]
    assert all(r.status == "pending" and r.attempts == 0 for r in e1.recipients)
    time.sleep(0.01)
    b2 = store.blobs.write(b"bounce")
    e2 = store.enqueue(queue_id="A2", blob=b2, sender="", recipients=["alice@remote.test"],
                       kind="bounce")
    assert e2.kind == "bounce" and e2.sender == ""
    assert [e.id for e in store.queue_list()] == ["A1", "A2"]
    assert store.queue_get("nope") is None

    now = time.time()
    assert due(store, now) == ["A1", "A2"]
    assert due(store, e1.created - 1) == []

    store.queue_update("A1", recipients=[
        QueueRecipient("a@remote.test", "sent", "", 1),
        QueueRecipient("b@remote.test", "pending", "450 mailbox busy", 1)],
        next_attempt=now + 600, last_error="b@remote.test: 450 mailbox busy")
    e1 = store.queue_get("A1")
    assert e1.attempts == 1 and e1.next_attempt == pytest.approx(now + 600)
    assert e1.last_error == "b@remote.test: 450 mailbox busy"
    assert {r.address: (r.status, r.last_error, r.attempts) for r in e1.recipients} == {
        "a@remote.test": ("sent", "", 1), "b@remote.test": ("pending", "450 mailbox busy", 1)}
    assert due(store, now + 1) == ["A2"]

    assert store.queue_flush(now + 1) == 1              # only A1 was waiting
    assert store.queue_flush(now + 1) == 0
    assert due(store, now + 1) == ["A1", "A2"]

    assert store.queue_delete("A1") is True
    assert store.queue_delete("A1") is False
    assert not blob_exists(store, b1.id)
    assert [e.id for e in store.queue_list()] == ["A2"]


def test_duplicate_queue_id_refused(store):
    b = store.blobs.write(b"x")
    store.enqueue(queue_id="DUP", blob=b, sender="a@example.test", recipients=["x@remote.test"])
    with pytest.raises(Exception):
        store.enqueue(queue_id="DUP", blob=b, sender="a@example.test",
                      recipients=["y@remote.test"])
    assert [r.address for r in store.queue_get("DUP").recipients] == ["x@remote.test"]


def test_one_batch_for_several_users_and_a_quota_reached_midway(store):
    """A group commit charges each user once, but a quota reached inside the
    batch refuses exactly the messages that do not fit, in order."""
    small = add_user(store, "small", quota=250)
    big = add_user(store, "big")
    blobs = [store.blobs.write(b"x" * 100) for _ in range(3)]
    got = store.deliver([Delivery(small.id, b) for b in blobs]
                        + [Delivery(big.id, b) for b in blobs]
                        + [Delivery(big.id, blobs[0], folder="Nope")])
    assert [type(r) for r in got] == [Delivered, Delivered, QuotaExceeded,
                                      Delivered, Delivered, Delivered, NotFound]
    assert [r.uid for r in got[:2]] == [1, 2] and [r.uid for r in got[3:6]] == [1, 2, 3]
    assert usage(store, small) == (200, 2) and usage(store, big) == (300, 3)
    assert len({r.message_id for r in got if isinstance(r, Delivered)}) == 5


# ---------------------------------------------------------------- what IMAP and the agent use
def test_message_index_uids_and_folder_versions(store):
    u = add_user(store)
    put(store, u, b"12345", flags={"\\Seen", "$A"}, internaldate=1000.0)
    put(store, u, b"678")
    fid = store.get_folder(u.id, "INBOX").id
    sent = store.get_folder(u.id, "Sent").id
    idx = store.message_index(fid)
    assert [(r[0], r[1], r[3], r[4]) for r in idx] == [
        (1, "$A \\Seen", 5, 1000.0), (2, "", 3, idx[1][4])]
    assert idx[0][5] == store.get_messages(fid, [1])[0].blob_id
    (ch,) = store.set_flags(fid, [2], frozenset({"\\Flagged"}), "add")
    assert [r[0] for r in store.message_index(fid, changed_since=idx[1][2])] == [2]
    assert store.message_index(fid, changed_since=ch.modseq) == []
    assert store.message_uids(fid) == [1, 2]
    assert store.folder_versions([fid, sent, 999_999]) == {
        fid: (ch.modseq, 3), sent: (store.get_folder_by_id(sent).highestmodseq, 1)}


def test_queue_leases(store):
    blob = store.blobs.write(b"Subject: x\r\n\r\nhi\r\n")
    store.enqueue(queue_id="Q1", blob=blob, sender="a@x.test", recipients=["b@y.test"])
    time.sleep(0.01)
    store.enqueue(queue_id="Q2", blob=blob, sender="a@x.test", recipients=["c@y.test"])
    now = time.time()
    assert [e.id for e in store.queue_claim("one", now, now + 60, 1)] == ["Q1"]
    assert [e.id for e in store.queue_claim("two", now, now + 60, 10)] == ["Q2"]
    assert store.queue_claim("three", now, now + 60, 10) == []
    assert store.queue_lease_owners() == ["one", "two"]
    assert store.queue_renew("one", now + 120) == 1
    assert store.queue_claim("three", now + 61, now + 180, 10)[0].id == "Q2"  # two's ran out
    assert store.queue_renew("two", now + 200) == 0
    assert store.queue_release("three", "Q1") == 0
    assert store.queue_release("three") == 1
    assert store.queue_lease_owners() == ["one"]
    store.queue_mark("Q1", [QueueRecipient("b@y.test", "sent", "250 ok", 1),
                            QueueRecipient("stranger@y.test", "sent", "", 1)])
    assert [(r.address, r.status) for r in store.queue_get("Q1").recipients] == [
        ("b@y.test", "sent")]
    store.queue_update("Q1", recipients=[], next_attempt=now + 300, last_error="")
    assert store.queue_lease_owners() == []
    assert store.queue_get("Q1").attempts == 1
    assert store.queue_claim("four", now + 62, now + 90, 10)[0].id == "Q2"    # Q1 not due
    assert store.queue_delete_many(["Q1", "Q2", "Q2", "gone"]) == 2
    assert store.queue_list() == [] and not blob_exists(store, blob.id)
    assert store.queue_delete_many([]) == 0


def test_open_store_memory_is_a_throwaway_memory_store(tmp_path):
    from coremail.config import build_settings
    from coremail.store import open_store as open_home_store
    from coremail.store.memory import MemoryStore
    s = open_home_store(tmp_path, build_settings({"storage": {"database": "memory:"}}, env={}))
    assert isinstance(s, MemoryStore)
    s.migrate()
    s.add_domain(DOMAIN)
    ref = s.blobs.write(b"x")
    assert s.blobs.path(ref.id).exists() and not (tmp_path / "data").exists()
    s.close()
    assert not s.blobs.root.exists()                    # its own temp dir, gone at close


def test_refusals_speak_the_interface_not_sql(store):
    """Every backend refuses with the Store's own errors, never a driver's."""
    with pytest.raises(NotFound):
        store.create_folder(987654, "Orphan")
    with pytest.raises(NotFound):
        store.set_forward(987654, "x@far.test", keep=False)
    ref = store.blobs.write(b"Subject: q\r\n\r\nq\r\n")
    store.enqueue(queue_id="QDUP1", blob=ref, sender="a@example.test", recipients=["b@far.test"])
    with pytest.raises(AlreadyExists):
        store.enqueue(queue_id="QDUP1", blob=ref, sender="a@example.test",
                      recipients=["b@far.test"])
    assert len(store.queue_get("QDUP1").recipients) == 1
