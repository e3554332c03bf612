"""Schema upgrades on databases that hold mail: a database made at an older
revision, filled through the store, migrated to head keeps every row, index
and constraint, and never hands out an old id again (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from coremail.store.interfaces import BlobRef, QueueRecipient
from coremail.store.sql import schema as t
from coremail.store.sql.engine import migrate
from coremail.store.sql.store import SqlStore

from .test_store import DOMAIN, add_user, put

ID_TABLES = ("users", "folders", "messages")


def _tables(store) -> list:
    """The tables of today's schema that this database has (an old one has fewer)."""
    have = set(inspect(store.engine).get_table_names())
    return [tb for tb in t.metadata.sorted_tables if tb.name in have]


def _rows(store, tables) -> dict[str, list[tuple]]:
    """Each table's rows, in the columns the database has and today's schema
    keeps (0008 moved folders.subscribed into its own table)."""
    insp = inspect(store.engine)
    out = {}
    with store.engine.connect() as c:
        for tb in tables:
            have = {col["name"] for col in insp.get_columns(tb.name)}
            cols = [col for col in tb.c if col.name in have and col.name not in _ADDED]
            out[tb.name] = sorted(tuple(r) for r in c.execute(select(*cols)))
    return out


_ADDED = {"recent_uid"}   # columns added since 0002, not there to compare before
_SPECIAL = ("INBOX", "Drafts", "Sent", "Junk", "Trash")


def _user_at_0002(s, local: str, quota: int = 0):
    """A user with their folders as the store made them before 0008 (a
    `subscribed` column in folders, no subscriptions table)."""
    with s.engine.begin() as c:
        dom = c.execute(text("SELECT id FROM domains WHERE name = :d"), {"d": DOMAIN}).scalar()
        uid = c.execute(text(
            "INSERT INTO users (address, domain_id, name, password_hash, quota, used_bytes,"
            " used_messages, enabled, admin, created) VALUES (:a, :d, '', '$argon2id$fake', :q,"
            " 0, 0, TRUE, FALSE, 0) RETURNING id"), {"a": f"{local}@{DOMAIN}", "d": dom, "q": quota}).scalar()
    for name in _SPECIAL:
        _folder_at_0002(s, uid, name)
    return s.get_user_by_id(uid)


def _folder_at_0002(s, user_id: int, name: str, subscribed: bool = True) -> None:
    with s.engine.begin() as c:
        top = c.execute(text("SELECT coalesce(max(uidvalidity), 1000) FROM folders")).scalar()
        c.execute(text("INSERT INTO folders (user_id, name, uidvalidity, uidnext, highestmodseq,"
                       " special_use, subscribed) VALUES (:u, :n, :v, 1, 1, NULL, :s)"),
                  {"u": user_id, "n": name, "v": top + 1, "s": subscribed})


# Indexes that later revisions add to tables 0002 already had (0010: folder counts).
ADDED_LATER = {"ix_messages_counts"}


def _shape(store, tables) -> dict[str, tuple]:
    """Indexes (those 0002 had), unique and foreign keys per table, as the database reports them."""
    insp = inspect(store.engine)
    out = {}
    for tb in tables:
        out[tb.name] = (
            sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                   for i in insp.get_indexes(tb.name) if i["name"] not in ADDED_LATER),
            sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(tb.name)),
            sorted((tuple(f["constrained_columns"]), f["referred_table"],
                    (f.get("options") or {}).get("ondelete"))
                   for f in insp.get_foreign_keys(tb.name)),
            tuple(insp.get_pk_constraint(tb.name)["constrained_columns"]))
    return out


def _max_ids(store) -> dict[str, int]:
    with store.engine.connect() as c:
        return {n: c.execute(text(f"SELECT max(id) FROM {n}")).scalar() for n in ID_TABLES}


def _at_0002_with_mail(tmp_path, backend):
    s = backend.open(tmp_path / "data")
    migrate(s.engine, "0002")
    s.add_domain(DOMAIN)
    alice, bob, carol = (_user_at_0002(s, n, quota=10_000) for n in ("alice", "bob", "carol"))
    _folder_at_0002(s, alice.id, "Work/2024", subscribed=False)
    for i in range(3):
        put(s, alice, b"a%d" % i)
        put(s, bob, b"b%d" % i, folder="Sent", flags={"\\Seen"})
        put(s, carol, b"c%d" % i, meta={"subject": f"c{i}"})
    gone = put(s, alice, b"expunged")
    # Gaps in the ids, made in SQL: today's expunge and delete_user write
    # tables a database at 0002 does not have yet.
    with s.engine.begin() as c:
        c.execute(text("DELETE FROM messages WHERE id = :i"), {"i": gone.message_id})
        for table, col in (("messages", "user_id"), ("folders", "user_id"), ("users", "id")):
            c.execute(text(f"DELETE FROM {table} WHERE {col} = :u"), {"u": bob.id})
    s.set_forward(carol.id, "far@remote.test", True)
    s.add_alias(f"sales@{DOMAIN}", alice.address)
    s.set_setting(alice.address, "signature", "-- a")
    ref = s.blobs.write(b"queued")
    s.enqueue(queue_id="Q1", blob=BlobRef(ref.id, ref.size), sender=alice.address,
              recipients=["x@remote.test", "y@remote.test"])
    s.queue_claim("agent:1:ab", now=9e9, until=9e9 + 60, limit=10)
    s.queue_mark("Q1", [QueueRecipient("x@remote.test", "sent", "", 1)])
    return s, alice, carol


def test_upgrade_from_0002_keeps_everything_and_never_reuses_ids(tmp_path, backend):
    s, alice, carol = _at_0002_with_mail(tmp_path, backend)
    old = _tables(s)
    rows, shape, top = _rows(s, old), _shape(s, old), _max_ids(s)
    s.migrate()

    assert _rows(s, old) == rows
    assert _shape(s, old) == shape
    with s.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), t.metadata) == []
    entry = s.queue_get("Q1")
    assert [r.status for r in entry.recipients] == ["sent", "pending"]
    assert s.queue_lease_owners() == ["agent:1:ab"]
    assert s.get_forward(carol.id).keep is True
    assert s.alias_targets(f"sales@{DOMAIN}") == [alice.address]
    assert s.list_subscriptions(alice.id) == sorted(_SPECIAL)   # not Work/2024
    assert s.get_folder(alice.id, "Work/2024").recent_uid == 0
    if backend.name == "sqlite":
        with s.engine.connect() as c:
            assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert c.execute(text("PRAGMA foreign_key_check")).all() == []
            seq = dict(c.execute(text("SELECT name, seq FROM sqlite_sequence")).all())
            for n in ID_TABLES:
                sql = c.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"),
                                {"n": n}).scalar()
                assert "AUTOINCREMENT" in sql
                assert seq[n] == top[n]

    # New rows get ids above every old one, and the newest deleted id stays used.
    dave = add_user(s, "dave")
    assert dave.id > top["users"]
    assert min(f.id for f in s.list_folders(dave.id)) > top["folders"]
    d = put(s, dave, b"new")
    assert d.message_id > top["messages"]
    s.delete_messages(dave.id, [d.message_id])
    assert put(s, dave, b"newer").message_id > d.message_id
    s.delete_user(dave.address)
    assert add_user(s, "erin").id > dave.id
    # Foreign keys still cascade after the rebuild.
    s.delete_user(carol.address)
    assert s.get_forward(carol.id) is None
    s.close()


def test_sqlite_upgrade_refuses_dangling_rows_and_rolls_back(tmp_path):
    # Foreign keys are off while SQLite tables are rebuilt; the check before
    # commit is what still guards them.
    s = SqlStore.open_home(tmp_path / "data")
    migrate(s.engine, "0002")
    s.close()
    db = sqlite3.connect(tmp_path / "data" / "coremail.db")
    with db:   # foreign keys are off on a plain connection: a child with no parent
        db.execute("INSERT INTO forwards (user_id, target, keep) VALUES (42, 'x@y.test', 0)")
    db.close()
    s = SqlStore.open_home(tmp_path / "data")
    with pytest.raises(RuntimeError, match="dangling foreign key"):
        s.migrate()
    with s.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        assert "AUTOINCREMENT" not in c.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'users'")).scalar()
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
    s.close()
