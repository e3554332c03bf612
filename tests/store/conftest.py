"""The store tests run against SQLite and a real PostgreSQL (a throw-away
cluster started once per session): the proof of "no SQLite-only SQL"."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .pgcluster import Cluster, server_bin_dir

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster():
    bin_dir = server_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(apt-get install postgresql, or `make test-deps`)")
    cluster = Cluster(bin_dir).start()
    yield cluster
    cluster.stop()


@dataclass(frozen=True)
class Backend:
    name: str
    url: str    # "" = SQLite under the data dir

    def open(self, data: Path):
        from coremail.store.sql.store import SqlStore
        return SqlStore.open_home(data, self.url)


@pytest.fixture(params=BACKENDS)
def backend(request) -> Backend:
    """One empty database per test: SQLite in the test's data dir, or a new
    database in the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return Backend("sqlite", "")
    return Backend("postgresql", request.getfixturevalue("pg_cluster").new_database())
