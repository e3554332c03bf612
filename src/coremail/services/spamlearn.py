"""Training the intelligent score: from files the administrator gives
(`coremail spam learn`: message files, Maildirs, mbox files) and from what
users do (a message moved or copied into Junk is spam for that user, out of
Junk into another folder is ham, undoing an earlier spam training).

A user's move must never wait for the training: `Learner` takes requests on
a queue and one background thread trains them in batches (one transaction
per user per batch). What is queued is in memory: a crash forgets at most
the last moment's requests, which costs some training, never mail.

Moving out of Junk into Trash trains nothing: that is deleting spam, not
saying it is good mail."""
from __future__ import annotations

import mailbox
import os
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..obs.log import Log
from ..pipeline.bayes.model import MIN_HAM, MIN_SPAM, item
from ..store.interfaces import GLOBAL_MODEL, BayesItem, Folder, Store

_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
BATCH = 500              # messages per transaction
MAX_MESSAGE = 10 << 20   # bytes of one message read for training


def is_junk(folder: Folder) -> bool:
    return folder.special_use == "\\Junk" or folder.name.lower() == "junk"


def is_trash(folder: Folder) -> bool:
    return folder.special_use == "\\Trash" or folder.name.lower() == "trash"


def direction(src: Folder, dest: Folder) -> bool | None:
    """True: train as spam, False: as ham, None: this move says nothing."""
    if is_junk(dest) and not is_junk(src):
        return True
    if is_junk(src) and not is_junk(dest) and not is_trash(dest):
        return False
    return None


# ------------------------------------------------------------------ files
@dataclass
class LearnReport:
    spam: bool
    owner: str
    learnt: int = 0
    relearnt: int = 0
    known: int = 0
    unreadable: list[str] = field(default_factory=list)
    totals: tuple[int, int] = (0, 0)
    tokens: int = 0

    def lines(self) -> list[str]:
        kind, other = ("spam", "ham") if self.spam else ("ham", "spam")
        out = [f"learnt {self.learnt + self.relearnt} message(s) as {kind} into {self.owner}"
               f" ({self.relearnt} of them moved from {other}, {self.known} already learnt as "
               f"{kind})"]
        out += [f"skipped {w}" for w in self.unreadable[:20]]
        if len(self.unreadable) > 20:
            out.append(f"skipped {len(self.unreadable) - 20} more unreadable file(s)")
        s, h = self.totals
        out.append(f"{self.owner} now holds {s} spam and {h} ham messages, {self.tokens} tokens")
        if s < MIN_SPAM or h < MIN_HAM:
            out.append(f"it gives no score until it has learnt {MIN_SPAM} spam and {MIN_HAM} ham "
                       "messages (together with the global model, for a user)")
        return out


def _is_maildir(p: Path) -> bool:
    return (p / "cur").is_dir() and (p / "new").is_dir()


def read_messages(paths: Iterable[Path]) -> Iterator[tuple[str, bytes | None]]:
    """(where, raw message or None when unreadable): a file is one message,
    a file starting with "From " an mbox, a directory with cur/ and new/ a
    Maildir, any other directory every file below it."""
    for path in paths:
        p = Path(path)
        if p.is_dir() and _is_maildir(p):
            md = mailbox.Maildir(str(p), factory=None, create=False)
            for key in md.iterkeys():
                try:
                    yield f"{p}:{key}", md.get_bytes(key)[:MAX_MESSAGE]
                except (OSError, KeyError) as e:
                    yield f"{p}:{key}: {e}", None
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                if _is_maildir(Path(root)):
                    dirs[:] = []
                    yield from read_messages([Path(root)])
                    continue
                for name in sorted(files):
                    yield from _one_file(Path(root) / name, in_dir=True)
        else:
            yield from _one_file(p, in_dir=False)


def _one_file(p: Path, *, in_dir: bool) -> Iterator[tuple[str, bytes | None]]:
    try:
        with open(p, "rb") as f:
            head = f.read(5)
    except OSError as e:
        yield f"{p}: {e.strerror or e}", None
        return
    if head == b"From " and not in_dir:
        try:
            box = mailbox.mbox(str(p), factory=None, create=False)
            for key in box.iterkeys():
                yield f"{p}#{key}", box.get_bytes(key)[:MAX_MESSAGE]
        except (OSError, mailbox.Error) as e:
            yield f"{p}: {e}", None
        return
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_MESSAGE)
    except OSError as e:
        yield f"{p}: {e.strerror or e}", None
        return
    if not _HEADER_LINE.match(raw if not raw.startswith(b"From ") else raw.partition(b"\n")[2]):
        yield f"{p}: not a mail message (it does not start with a header field)", None
        return
    yield str(p), raw


def learn_paths(store: Store, paths: Sequence[Path], spam: bool, owner: int = GLOBAL_MODEL,
                owner_name: str = "the global model") -> LearnReport:
    """Blocking: train every message under `paths`, BATCH per transaction."""
    report = LearnReport(spam, owner_name)
    batch: list[BayesItem] = []

    def flush() -> None:
        for outcome in store.bayes_train(owner, batch):
            setattr(report, outcome, getattr(report, outcome) + 1)
        batch.clear()

    for where, raw in read_messages(paths):
        if raw is None:
            report.unreadable.append(where)
            continue
        batch.append(item(raw, spam))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    report.totals = store.bayes_totals([owner]).get(owner, (0, 0))
    report.tokens = store.bayes_size(owner)
    return report


# ------------------------------------------------------------ from users
@dataclass(frozen=True)
class _Moved:
    user_id: int
    src_folder_id: int
    dest: Folder
    uids: tuple[int, ...]


@dataclass(frozen=True)
class _Marked:
    user_id: int
    message_ids: tuple[int, ...]
    spam: bool


class Learner:
    """Trainings asked for by users, done in the background in batches."""

    def __init__(self, store: Store, log: Log | None = None):
        self.store = store
        self.log = log
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()     # set while nothing is pending
        self._idle.set()
        self._pending = 0

    # Called from a command's thread: only a queue put, never a read.
    def moved(self, user_id: int, src_folder_id: int, dest: Folder, uids: Sequence[int]) -> None:
        """Messages just moved or copied into `dest` (their new UIDs there)."""
        if uids:
            self._put(_Moved(user_id, src_folder_id, dest, tuple(uids)))

    def mark(self, user_id: int, message_ids: Sequence[int], spam: bool) -> None:
        """A user's own "Spam" / "Not spam" on messages (the webmail's buttons)."""
        if message_ids:
            self._put(_Marked(user_id, tuple(message_ids), spam))

    def _put(self, req) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
            self._q.put(req)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="bayes-learner",
                                                daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until everything queued is trained (tests, a graceful stop)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        while True:
            try:
                reqs = [self._q.get(timeout=30)]
            except queue.Empty:
                with self._lock:   # a put after this sees no live thread and starts one
                    if self._q.empty():
                        self._thread = None
                        return
                continue
            while len(reqs) < BATCH:
                try:
                    reqs.append(self._q.get_nowait())
                except queue.Empty:
                    break
            try:
                self._train(reqs)
            except Exception as e:  # noqa: BLE001 - a failed training must not stop later ones
                if self.log is not None:
                    self.log.error("bayes.learn_failed", error=repr(e), requests=len(reqs))
            with self._lock:
                self._pending -= len(reqs)
                if self._pending == 0:
                    self._idle.set()

    def _train(self, reqs: list) -> None:
        per_user: dict[int, list[BayesItem]] = {}
        for req in reqs:
            for spam, raw in self._messages(req):
                per_user.setdefault(req.user_id, []).append(item(raw, spam))
        for user_id, items in per_user.items():
            outcomes = self.store.bayes_train(user_id, items)
            if self.log is not None:
                self.log.info("bayes.learnt", user_id=user_id, messages=len(items),
                              spam=sum(i.spam for i in items),
                              learnt=outcomes.count("learnt"), relearnt=outcomes.count("relearnt"),
                              known=outcomes.count("known"))

    def _owner(self, folder_id: int) -> int | None:
        f = self.store.get_folder_by_id(folder_id)
        return f.user_id if f is not None else None

    def _messages(self, req) -> Iterator[tuple[bool, bytes]]:
        if isinstance(req, _Moved):
            src = self.store.get_folder_by_id(req.src_folder_id)
            spam = direction(src, req.dest) if src is not None else None
            if spam is None:
                return
            msgs = self.store.get_messages(req.dest.id, list(req.uids))
        else:
            spam = req.spam
            msgs = [m for m in (self.store.get_message(i) for i in req.message_ids)
                    if m is not None and self._owner(m.folder_id) == req.user_id]
        for m in msgs:
            try:
                yield spam, self.store.blobs.read(m.blob_id, 0, MAX_MESSAGE)
            except Exception:  # noqa: BLE001 - expunged meanwhile: nothing to learn from
                continue
