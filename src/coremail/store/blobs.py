"""Message bytes on disk: the only code that writes mail to a file.

A blob is written to an unnamed file in its directory (O_TMPFILE), fsync'ed,
linked in under its name and its directory fsync'ed, so a crash at any point
leaves either no blob or a whole one, and nothing to clean up. Where the
filesystem has no O_TMPFILE, a temp file under tmp/ is renamed into place
instead, and `clean_tmp` removes what a crash left there. Group commit: `write(..., sync=False)` then one `sync(refs)` for a batch,
which fsyncs files in parallel threads and each directory once. Blob ids
start with the time, and a directory holds the blobs of about half a minute
(`DIR_PREFIX` characters of the id), so one batch needs one directory fsync.
"""
from __future__ import annotations

import errno
import os
import secrets
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Iterable

from .interfaces import BlobMissing, BlobRef, StorageFull, StoreError

_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DIR_PREFIX = 5  # 2^15 ms per directory: ~33 s of mail, ~2,600 directories a day


def new_id() -> str:
    """A sortable, unique id (time in ms + 50 random bits), 18 characters:
    used for blobs and as the queue id that follows a message in the logs."""
    n = (int(time.time() * 1000) << 50) | secrets.randbits(50)
    out = []
    for _ in range(18):
        out.append(_B32[n & 31])
        n >>= 5
    return "".join(reversed(out))


class BlobStore:
    def __init__(self, root: Path, *, unnamed: bool = True):
        self.root = Path(root)
        self.unnamed = unnamed and hasattr(os, "O_TMPFILE")   # falls back by itself
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._dirs: set[Path] = set()   # directories known to exist (durably)
        self._rootfd = -1

    def spool_file(self) -> BinaryIO:
        """An anonymous file beside the blobs (same disk, no name, gone when
        closed or after a crash) for a message while it arrives (SMTP DATA
        past a megabyte): unfinished mail stays out of memory."""
        return tempfile.TemporaryFile(dir=self.tmp)

    def _root_fd(self) -> int:
        if self._rootfd < 0:
            self._rootfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._rootfd

    def path(self, blob_id: str) -> Path:
        return self.root / blob_id[:DIR_PREFIX] / blob_id

    def _final(self, blob_id: str) -> Path:
        p = self.path(blob_id)
        if p.parent not in self._dirs:
            if not p.parent.is_dir():
                p.parent.mkdir(parents=True, exist_ok=True)
                _fsync_dir(self.root)
            if len(self._dirs) > 64:
                self._dirs.clear()
            self._dirs.add(p.parent)
        return p

    def write(self, chunks: bytes | Iterable[bytes], *, blob_id: str | None = None,
              sync: bool = True) -> BlobRef:
        """Store bytes as a new blob. With sync=False the caller must call
        `sync([ref])` before telling anyone the message is safe."""
        blob_id = blob_id or new_id()
        tmp: Path | None = None
        fd = -1
        size = 0
        try:
            final = self._final(blob_id)
            if self.unnamed:
                try:
                    # An unnamed file in its final directory, linked in once
                    # whole: a crash leaves nothing behind, and no rename
                    # across directories (a filesystem-wide lock) is needed.
                    fd = os.open(final.parent, os.O_TMPFILE | os.O_WRONLY, 0o640)
                except OSError as e:
                    if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                        raise
                    self.unnamed = False   # this filesystem has no O_TMPFILE
            if fd < 0:
                tmp = self.tmp / f"{blob_id}.{os.getpid()}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                for chunk in ([chunks] if isinstance(chunks, (bytes, bytearray, memoryview))
                              else chunks):
                    view = memoryview(chunk)
                    while view:
                        n = os.write(fd, view)
                        size += n
                        view = view[n:]
                if sync:
                    os.fsync(fd)
                if tmp is None:
                    # A dir fd makes os.link use linkat(AT_SYMLINK_FOLLOW),
                    # which links the file the /proc name points at.
                    os.link(f"/proc/self/fd/{fd}", final, src_dir_fd=self._root_fd(),
                            follow_symlinks=True)
            finally:
                os.close(fd)
            if tmp is not None:
                os.rename(tmp, final)
            if sync:
                _fsync_dir(final.parent)
        except OSError as e:
            if tmp is not None:
                _unlink(tmp)
            raise _storage_error(e) from None
        except BaseException:
            # The chunk source failed (client gone, message too big): no temp file left behind.
            if tmp is not None:
                _unlink(tmp)
            raise
        return BlobRef(blob_id, size)

    def sync(self, refs: Iterable[BlobRef]) -> None:
        """Make blobs written with sync=False durable: fsync each file (in
        parallel, so the filesystem journal can merge them) and each directory once."""
        paths = [self.path(r.id) for r in refs]
        if not paths:
            return
        with self._pool_lock:  # made on first use: no threads before a fork
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync")
        # Files and their directories are synced at once: the order between
        # them does not matter, since nothing refers to a blob until the
        # database commit that follows this call.
        jobs = [(_fsync_file, p) for p in paths] + [(_fsync_dir, d) for d in {p.parent for p in paths}]
        try:
            list(self._pool.map(lambda job: job[0](job[1]), jobs))
        except OSError as e:
            raise _storage_error(e) from None

    def open(self, blob_id: str) -> BinaryIO:
        try:
            return open(self.path(blob_id), "rb", buffering=0)
        except FileNotFoundError:
            raise BlobMissing(f"message data {blob_id} is gone") from None

    def read(self, blob_id: str, start: int = 0, length: int | None = None) -> bytes:
        with self.open(blob_id) as f:
            if start:
                f.seek(start)
            if length is None:
                return f.readall()
            return f.read(length)

    def size(self, blob_id: str) -> int:
        try:
            return os.stat(self.path(blob_id)).st_size
        except FileNotFoundError:
            raise BlobMissing(f"message data {blob_id} is gone") from None

    def delete(self, blob_ids: Iterable[str]) -> None:
        for b in blob_ids:
            _unlink(self.path(b))

    def clean_tmp(self, older_than: float = 3600) -> int:
        """Remove temp files of writes that never finished (a crash mid-write)."""
        n = 0
        cutoff = time.time() - older_than
        for p in self.tmp.iterdir():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    n += 1
            except OSError:
                pass
        return n


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _storage_error(e: OSError) -> StoreError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("the server's storage is full; please try again later")
    return StoreError(f"the message could not be stored ({os.strerror(e.errno or 0)}); "
                      "please try again later")
