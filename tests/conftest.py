"""Shared pytest fixtures."""

import pytest

from tests.support.dnsserver import dns_server  # noqa: F401


@pytest.fixture(scope="session")
def pg_cluster():
    """One throw-away PostgreSQL cluster for the session (tests/store/pgcluster.py):
    the store tests and the several-node tests take databases in it. Under
    COREMAIL_TEST_DATABASE=postgresql it is the one the test homes use."""
    from tests.store.pgcluster import Cluster, server_bin_dir
    from tests.support import testdb
    if testdb.on_postgresql():
        yield testdb.cluster()
        return
    bin_dir = server_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(apt-get install postgresql, or `make test-deps`)")
    cluster = Cluster(bin_dir).start()
    yield cluster
    cluster.stop()
