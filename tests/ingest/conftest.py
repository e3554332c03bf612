"""An ingest service over a real SQLite store in a temp dir."""
from __future__ import annotations

import io

import pytest

from coremail.config import build_settings
from coremail.ingest import Ingest
from coremail.obs.log import Log
from coremail.store.sql.store import SqlStore


class World:
    def __init__(self, tmp_path):
        self.store = SqlStore.open_home(tmp_path)
        self.store.migrate()
        self.store.add_domain("example.test")
        self.settings = build_settings({"server": {"hostname": "mx.example.test",
                                                   "domain": "example.test"}})
        self.logbuf = io.StringIO()
        self.log = Log("test", self.logbuf)
        self.ingest = Ingest(self.store, self.log, lambda: self.settings)

    def user(self, address: str, quota: int = 0):
        return self.store.add_user(address, password_hash="x", quota=quota)

    def folder(self, user, name="INBOX"):
        return self.store.get_folder(user.id, name)

    def messages(self, user, name="INBOX", meta=False):
        return self.store.list_messages(self.folder(user, name).id, with_meta=meta)


@pytest.fixture
async def world(tmp_path):
    w = World(tmp_path)
    yield w
    await w.ingest.close()
    w.store.close()
