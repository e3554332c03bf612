"""The memory store: the Store interface in plain dicts under one lock, for
fast unit tests and quick experiments. Not durable; never for production."""
from .store import MemoryStore

__all__ = ["MemoryStore"]
