"""Storage: the Store interface (interfaces.py), its SQL implementation
(sql/), a memory one for tests (memory/), and message bytes on disk (blobs.py)."""
from __future__ import annotations

from pathlib import Path

from ..config import Settings
from .interfaces import *  # noqa: F401,F403
from .interfaces import Store

MEMORY = "memory:"


def open_store(home: Path, settings: Settings) -> Store:
    """The store for a home: SQLite under DIR/data unless storage.database names another.

    storage.database = "memory:" gives a MemoryStore, for quick experiments
    only: it is not durable (everything is lost at exit, message files
    included) and each process has its own, so services started as separate
    processes do not see each other's mail. Never use it in production."""
    if settings.storage.database == MEMORY:
        from .memory import MemoryStore
        return MemoryStore()
    from .sql.store import SqlStore
    return SqlStore.open_home(Path(home) / "data", settings.storage.database,
                              blobs_dir(home, settings))


def blobs_dir(home: Path, settings: Settings) -> Path:
    """Where the message files are: storage.blobs, else DIR/data/blobs."""
    return Path(settings.storage.blobs) if settings.storage.blobs else Path(home) / "data" / "blobs"
