"""The test-database switch (tests/support/testdb.py): under
COREMAIL_TEST_DATABASE=postgresql a test home is a first node on a database
of its own; by default it is SQLite in the home."""
from __future__ import annotations

from coremail.config import load_settings
from coremail.store import open_store
from tests.support.home import init_test_home
from tests.support.testdb import on_postgresql


def test_each_home_has_its_own_database(tmp_path):
    homes = [init_test_home(tmp_path / name) for name in ("a", "b")]
    urls = [load_settings(h).storage.database for h in homes]
    if on_postgresql():
        assert all(u.startswith("postgresql+psycopg://") for u in urls) and urls[0] != urls[1]
    else:
        assert urls == ["", ""] and (homes[0] / "data" / "coremail.db").exists()
    for h in homes:
        store = open_store(h, load_settings(h))
        try:
            assert store.list_domains() and store.shared == on_postgresql()
        finally:
            store.close()
