"""Blob files: whole or absent. A write killed halfway leaves at most a temp
file (removed by clean_tmp), a full disk is a temporary StorageFull, and
group commit (sync=False, then sync()) really fsyncs."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from coremail.store import blobs as blobs_mod
from coremail.store.blobs import BlobStore, new_id
from coremail.store.interfaces import BlobMissing, BlobRef, StorageFull, StoreError


@pytest.fixture(params=[True, False], ids=["o_tmpfile", "tmp_dir"])
def bs(tmp_path, request):
    """Both ways of writing: an unnamed file linked in, and the temp-file fallback."""
    return BlobStore(tmp_path / "blobs", unnamed=request.param)


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- basics
def test_write_and_read(bs):
    ref = bs.write(b"Subject: x\r\n\r\nbody\r\n")
    assert isinstance(ref, BlobRef) and ref.size == 20
    assert bs.read(ref.id) == b"Subject: x\r\n\r\nbody\r\n"
    with bs.open(ref.id) as f:
        assert f.read(7) == b"Subject"
    assert bs.path(ref.id).name == ref.id and bs.path(ref.id).parent.parent == bs.root
    assert list(bs.tmp.iterdir()) == []


def test_write_chunks_of_any_kind(bs):
    ref = bs.write([b"abc", bytearray(b"def"), memoryview(b"ghi"), b""])
    assert (ref.size, bs.read(ref.id)) == (9, b"abcdefghi")
    ref = bs.write(b"x" * 65536 for _ in range(20))
    assert ref.size == 20 * 65536 and len(bs.read(ref.id)) == ref.size
    empty = bs.write(b"")
    assert empty.size == 0 and bs.read(empty.id) == b""


def test_explicit_blob_id(bs):
    ref = bs.write(b"hello", blob_id="QUEUEID0000000001")
    assert ref.id == "QUEUEID0000000001"
    assert bs.read("QUEUEID0000000001") == b"hello"


def test_ids_are_unique_and_sortable_by_time():
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 18 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    first = new_id()
    time.sleep(0.003)
    assert new_id() > first


def test_delete(bs):
    a, b = bs.write(b"a"), bs.write(b"b")
    bs.delete([a.id, "NOSUCHBLOB00000000"])
    assert not bs.path(a.id).exists() and bs.read(b.id) == b"b"


def test_clean_tmp_only_removes_old_files(bs):
    fresh = bs.tmp / "FRESH.1"
    old = bs.tmp / "OLD.1"
    fresh.write_bytes(b"x")
    old.write_bytes(b"y")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert bs.clean_tmp() == 1
    assert sorted(p.name for p in bs.tmp.iterdir()) == ["FRESH.1"]
    assert bs.clean_tmp(older_than=-1) == 1
    assert list(bs.tmp.iterdir()) == []


# ---------------------------------------------------------------- crash safety
CHILD = r"""
import sys, time
from coremail.store.blobs import BlobStore
bs = BlobStore(sys.argv[1], unnamed=sys.argv[3] == "1")
def chunks():
    for i in range(200000):
        yield b"x" * 65536
        if i == 32:
            print("writing", flush=True)
        time.sleep(0.0005)
bs.write(chunks(), blob_id=sys.argv[2])
print("finished", flush=True)
"""


@pytest.mark.parametrize("unnamed", [True, False], ids=["o_tmpfile", "tmp_dir"])
def test_kill_mid_write_leaves_no_blob(tmp_path, unnamed):
    root = tmp_path / "blobs"
    blob_id = new_id()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), blob_id, str(int(unnamed))],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        tmp_files = list((root / "tmp").iterdir())
        if unnamed:   # the bytes are in a file without a name
            assert tmp_files == [] and not BlobStore(root).path(blob_id).exists()
        else:
            assert [p.name for p in tmp_files] == [f"{blob_id}.{child.pid}"]
            assert tmp_files[0].stat().st_size >= 32 * 65536
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    bs = BlobStore(root)
    assert not bs.path(blob_id).exists()
    with pytest.raises(BlobMissing):
        bs.read(blob_id)
    if unnamed:
        assert files_under(root) == []          # the kernel freed the unnamed file
    else:
        assert files_under(root) == [f"tmp/{blob_id}.{child.pid}"]   # only the temp file
        assert bs.clean_tmp(older_than=0) == 1
        assert files_under(root) == []


def test_a_failing_chunk_source_leaves_no_temp_file(bs):
    # e.g. the SMTP client hangs up mid-DATA, or the message turns out too big.
    def chunks():
        yield b"x" * 1000
        raise EOFError("client went away")

    with pytest.raises(EOFError):
        bs.write(chunks())
    assert files_under(bs.root) == []


# ---------------------------------------------------------------- full disk
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_is_storage_full_and_leaves_nothing(bs, monkeypatch, code):
    real_write = os.write
    calls = []

    def failing_write(fd, data):
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(blobs_mod.os, "write", failing_write)
    with pytest.raises(StorageFull) as e:
        bs.write(b"y" * 4096 for _ in range(10))
    assert (e.value.code, e.value.enhanced) == (452, "4.3.1")   # temporary, never 5xx
    assert "full" in e.value.text
    assert len(calls) == 3
    assert files_under(bs.root) == []


def test_other_io_errors_are_temporary_store_errors(bs, monkeypatch):
    def eio(fd, data):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(blobs_mod.os, "write", eio)
    with pytest.raises(StoreError) as e:
        bs.write(b"data")
    assert not isinstance(e.value, StorageFull)
    assert e.value.code == 451 and "Input/output error" in e.value.text
    assert files_under(bs.root) == []


def test_fsync_failure_leaves_nothing(bs, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs_mod.os, "fsync", no_space)
    with pytest.raises(StorageFull):
        bs.write(b"data")
    assert files_under(bs.root) == []


# ---------------------------------------------------------------- group commit
@pytest.fixture
def fsyncs(monkeypatch):
    """Records each fsync as 'file' or 'dir'."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd):
        seen.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        return real(fd)

    monkeypatch.setattr(blobs_mod.os, "fsync", spy)
    return seen


def test_sync_write_fsyncs_file_and_directory(bs, fsyncs):
    bs.write(b"durable")
    assert fsyncs.count("file") == 1 and "dir" in fsyncs


def test_unsynced_writes_then_one_sync(bs, fsyncs):
    refs = [bs.write(b"message %d" % i, sync=False) for i in range(6)]
    assert fsyncs.count("file") == 0                 # nothing durable yet ...
    for r in refs:
        assert bs.read(r.id).startswith(b"message")  # ... but readable
    fsyncs.clear()
    bs.sync(refs)
    assert fsyncs.count("file") == 6                 # every file once
    dirs = {bs.path(r.id).parent for r in refs}
    assert fsyncs.count("dir") == len(dirs)          # every directory once
    fsyncs.clear()
    bs.sync([])
    assert fsyncs == []


def test_sync_of_a_missing_blob_is_a_store_error(bs):
    with pytest.raises(StoreError):
        bs.sync([BlobRef("NOSUCHBLOB00000000", 1)])
