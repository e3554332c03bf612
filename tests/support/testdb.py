"""Which database a test home gets. By default none (SQLite in the home's
DIR/data, as a fresh `coremail init` makes it); with
COREMAIL_TEST_DATABASE=postgresql (`make test-postgresql`) one throw-away
PostgreSQL cluster is started for the whole test process and every home gets
a database of its own on it, so the same tests run unchanged on PostgreSQL.

A home's database is a CREATE DATABASE copy of a template migrated once
(cheaper than running every migration per home), empty of any domain so
that `coremail init --database` takes it as a first node. A database of its
own, not a schema: advisory locks and LISTEN/NOTIFY channels are per database,
and homes must not see each other's. The databases die with the cluster at
exit."""
from __future__ import annotations

import atexit
import itertools
import os
import tempfile
import threading
from pathlib import Path

import pytest

ENV = "COREMAIL_TEST_DATABASE"
TEMPLATE = "coremail_template"

_lock = threading.Lock()
_cluster = None
_names = itertools.count(1)


def on_postgresql() -> bool:
    value = os.environ.get(ENV, "").strip().lower()
    if value not in ("", "sqlite", "postgresql"):
        raise RuntimeError(f"{ENV}={value!r}: use sqlite or postgresql")
    return value == "postgresql"


def sqlite_only(reason: str):
    """Mark a test (or module, as `pytestmark`) that only makes sense on SQLite."""
    return pytest.mark.skipif(on_postgresql(), reason=f"SQLite only: {reason}")


def cluster():
    """The process's PostgreSQL cluster, started at first use (with its template)."""
    global _cluster
    with _lock:
        if _cluster is None:
            from tests.store.pgcluster import Cluster, server_bin_dir
            bin_dir = server_bin_dir()
            if bin_dir is None:
                raise RuntimeError(f"{ENV}=postgresql needs the PostgreSQL server binaries "
                                   "(apt-get install postgresql, or `make test-deps`)")
            started = Cluster(bin_dir).start()
            atexit.register(started.stop)
            _make_template(started)
            _cluster = started
        return _cluster


def _sql(c, statement: str) -> None:
    import psycopg
    with psycopg.connect(f"host=127.0.0.1 port={c.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(statement)


def _make_template(c) -> None:
    from coremail.store.sql.store import SqlStore
    _sql(c, f"CREATE DATABASE {TEMPLATE}")
    store = SqlStore(c.url(TEMPLATE), Path(tempfile.gettempdir()) / "coremail-unused-blobs")
    try:
        store.migrate()
    finally:
        store.close()   # CREATE DATABASE ... TEMPLATE wants no session on it


def home_database() -> str:
    """A fresh database URL for one test home, or "" (SQLite) by default."""
    if not on_postgresql():
        return ""
    c = cluster()
    name = f"home{os.getpid()}_{next(_names)}"
    _sql(c, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return c.url(name)
