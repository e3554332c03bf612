"""The files every node of a shared system needs alike: the TLS certificate
and key (conf/tls/), the DKIM keys (conf/dkim/) and the SRS secret
(conf/srs.secret). The database holds the system's copy (shared_files);
each node keeps its own files in conf/, which is what every reader already
reads.

Why copies and not reads from the database: the signers, the TLS context
and the SRS code read files (dkimpy, ssl, an operator's own certificate
tools, postsrsd's format), and a node keeps serving from its files when the
database is briefly away. `sync` runs at `init --join` (pull), at the first
node's init and at every `coremail start` (both ways): a file newer on
either side wins, so a certificate replaced or a DKIM key made on one node
reaches the others at their next start.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..store.interfaces import Store

SHARED = ("tls", "dkim", "srs.secret")   # under conf/
SLACK = 1.0   # seconds: mtimes within this count as the same version


def _local(conf: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for name in SHARED:
        p = conf / name
        if p.is_file():
            out[name] = p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    out[f.relative_to(conf).as_posix()] = f
    return out


def _write(path: Path, content: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


def push(home: Path, store: Store) -> list[str]:
    """Put this node's files that the database lacks or has older; their names."""
    remote = store.shared_files()
    sent = []
    for name, path in _local(Path(home) / "conf").items():
        mtime = path.stat().st_mtime
        have = remote.get(name)
        if have is None or (mtime > have[1] + SLACK and path.read_bytes() != have[0]):
            store.shared_file_put(name, path.read_bytes(), mtime)
            sent.append(name)
    return sent


def pull(home: Path, store: Store) -> list[str]:
    """Write the database's files that this node lacks or has older; their names."""
    conf = Path(home) / "conf"
    local = _local(conf)
    got = []
    for name, (content, updated) in sorted(store.shared_files().items()):
        if ".." in Path(name).parts or Path(name).is_absolute() \
                or name.split("/", 1)[0] not in SHARED:
            continue    # never write outside conf/'s shared files
        path = local.get(name)
        if path is None or (updated > path.stat().st_mtime + SLACK
                            and path.read_bytes() != content):
            _write(conf / name, content, updated)
            got.append(name)
    return got


def sync(home: Path, store: Store) -> tuple[list[str], list[str]]:
    """Pull then push: (names pulled, names pushed)."""
    got = pull(home, store)
    return got, push(home, store)
