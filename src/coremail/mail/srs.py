"""The Sender Rewriting Scheme for mail we forward to remote addresses, in
postsrsd's SRS0/SRS1 form (srslib: HMAC-SHA1 hash of 4 characters and a day
stamp, libsrs2's rules): the envelope sender becomes an address of ours, so
the forward passes SPF at its destination, and a bounce to it comes back here
to be sent on to the original sender. The secret is `conf/srs.secret`: one
per line, the first signs, all are accepted (postsrsd reads the same file
format, so one file can serve both)."""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import srslib

SECRET_FILE = Path("conf") / "srs.secret"
VALID_DAYS = 21
_SRS = re.compile(r"^srs[01][=+-]", re.IGNORECASE)


class SrsForged(ValueError):
    """An SRS address whose hash or time-stamp does not hold."""


def is_srs(local_part: str) -> bool:
    return bool(_SRS.match(local_part))


def ensure_secret(home: Path) -> Path:
    path = Path(home) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:   # another process made it first
            return path
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return path


class Srs:
    def __init__(self, home: Path):
        self.home = Path(home)
        self._stamp: tuple | None = None
        self._srs: srslib.SRS | None = None

    def _scheme(self) -> srslib.SRS:
        path = ensure_secret(self.home)
        st = path.stat()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._srs is None or stamp != self._stamp:
            keys = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
            if not keys:
                raise ValueError(f"{path} holds no secret")
            self._srs = srslib.SRS(keys[0], prev_secrets=keys[1:], validity_days=VALID_DAYS)
            self._stamp = stamp
        return self._srs

    def forward(self, sender: str, domain: str) -> str:
        """``sender`` rewritten under ``domain`` (SRS0, or SRS1 for an SRS0 of another)."""
        return self._scheme().forward(sender, domain)

    def reverse(self, address: str) -> str:
        """Where a bounce to ``address`` goes; SrsForged when it is not one of ours."""
        try:
            return self._scheme().reverse(address)
        except srslib.Error as e:
            raise SrsForged(str(e)) from None
