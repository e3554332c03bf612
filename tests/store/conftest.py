"""The store tests run against every Store: SQLite, a real PostgreSQL (a
throw-away cluster started once per session: the proof of "no SQLite-only
SQL"), and the memory store (the proof it behaves like the SQL one, so unit
tests elsewhere may trust it).

Fixtures: `store` (all three backends, the behavioural suite), `sql_store`
and `backend` (SQLite and PostgreSQL only: WAL, migrations, raw SQL,
several processes at once)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


DOMAIN = "example.test"
SQL_BACKENDS = ["sqlite", "postgresql"]
STORE_BACKENDS = SQL_BACKENDS + ["memory"]


@dataclass(frozen=True)
class Backend:
    name: str
    url: str    # "" = SQLite under the data dir

    def open(self, data: Path):
        from coremail.store.sql.store import SqlStore
        return SqlStore.open_home(data, self.url)


def _sql_backend(request, name: str) -> Backend:
    if name == "sqlite":
        return Backend("sqlite", "")
    return Backend("postgresql", request.getfixturevalue("pg_cluster").new_database())


@pytest.fixture(params=SQL_BACKENDS)
def backend(request) -> Backend:
    """One empty database per test: SQLite in the test's data dir, or a new
    database in the session's PostgreSQL cluster."""
    return _sql_backend(request, request.param)


def _open_store(request, tmp_path: Path, name: str):
    data = tmp_path / "data"
    if name == "memory":
        from coremail.store.memory import MemoryStore
        s = MemoryStore(data / "blobs")     # real blob files: tests look at their paths
    else:
        s = _sql_backend(request, name).open(data)
        s.migrate()
    s.add_domain(DOMAIN)
    return s


@pytest.fixture(params=STORE_BACKENDS)
def store(request, tmp_path):
    """An empty store with the domain DOMAIN, on each backend in turn."""
    s = _open_store(request, tmp_path, request.param)
    yield s
    s.close()


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request, tmp_path):
    """As `store`, for tests that reach under the interface (SQL, the engine)."""
    s = _open_store(request, tmp_path, request.param)
    yield s
    s.close()
