"""The sent-journal: an append-only file where the deliveragent notes "this
recipient got a 250" the instant the remote host says so.

Why: between a remote 250 and the database commit that records it lie a few
milliseconds (a transaction, an fsync). A kill -9 in that window would make
the restarted agent send the message again. One write(2) to a file in the
page cache survives a killed process, costs microseconds and needs no lock,
so the window shrinks to the time it takes the event loop to read the reply.
No fsync: losing a note to a power cut only means one duplicate, never a
lost message. At start-up the journals of dead agents are replayed into the
store and removed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from ..store.interfaces import QueueRecipient, Store

ROTATE_BYTES = 4 * 1024 * 1024


class _File:
    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = 0
        self.open_qids: set[str] = set()


class Journal:
    """Notes of this agent ``token`` (its files are DIR/<pid>.<token>.<n>)."""

    def __init__(self, directory: Path, pid: int, token: str):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prefix = f"{pid}.{token}"
        self._n = 0
        self._files: list[_File] = []
        self._current = self._new_file()

    def _new_file(self) -> _File:
        self._n += 1
        f = _File(self.dir / f"{self.prefix}.{self._n}.jnl")
        self._files.append(f)
        return f

    def sent(self, qid: str, addresses: list[str], text: str) -> None:
        line = (json.dumps({"q": qid, "r": addresses, "e": text}, separators=(",", ":"))
                + "\n").encode()
        f = self._current
        os.write(f.fd, line)
        f.size += len(line)
        f.open_qids.add(qid)
        if f.size > ROTATE_BYTES:
            self._current = self._new_file()

    def committed(self, qid: str) -> None:
        """The store now holds the outcome of ``qid``'s attempt: its notes are
        no longer needed, and a full file with no open notes is removed."""
        for f in list(self._files):
            f.open_qids.discard(qid)
            if f is not self._current and not f.open_qids:
                os.close(f.fd)
                _unlink(f.path)
                self._files.remove(f)

    def close(self) -> None:
        """A clean stop: every attempt was committed, so the files can go."""
        for f in self._files:
            os.close(f.fd)
            if not f.open_qids:
                _unlink(f.path)
        self._files = []


def replay(directory: Path, store: Store, alive: Callable[[int], bool]) -> int:
    """Apply the notes of agents that are gone to the store; returns how many
    recipients were marked sent. A note for an entry no longer queued is moot."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    marked = 0
    for path in sorted(directory.glob("*.jnl")):
        pid = int(path.name.split(".", 1)[0]) if path.name.split(".", 1)[0].isdigit() else 0
        if pid and alive(pid):
            continue
        notes: dict[str, dict[str, str]] = {}
        for raw in path.read_bytes().splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue  # a torn last line: that reply was never fully noted
            for addr in rec.get("r", []):
                notes.setdefault(rec["q"], {})[addr] = rec.get("e", "")
        for qid, sent in notes.items():
            entry = store.queue_get(qid)
            if entry is None:
                continue
            marks = [QueueRecipient(r.address, "sent", sent[r.address], r.attempts + 1)
                     for r in entry.recipients if r.address in sent and r.status == "pending"]
            if marks:
                store.queue_mark(qid, marks)
                marked += len(marks)
        _unlink(path)
    return marked


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
