"""Storage: the Store interface (interfaces.py), its SQL implementation
(sql/), and message bytes on disk (blobs.py)."""
from __future__ import annotations

from pathlib import Path

from ..config import Settings
from .interfaces import *  # noqa: F401,F403
from .interfaces import Store


def open_store(home: Path, settings: Settings) -> Store:
    """The store for a home: SQLite under DIR/data unless storage.database names another."""
    from .sql.store import SqlStore
    return SqlStore.open_home(Path(home) / "data", settings.storage.database)
