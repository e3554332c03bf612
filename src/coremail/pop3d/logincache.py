"""A second level for services.login.LoginCache, shared by the POP3 workers
of one host, so a polling user costs one argon2 check per TTL instead of one
per worker process (the kernel spreads a client's connections over workers).

One file per user in a 0700 directory under DIR/run: the expiry and
PBKDF2-SHA256(login, password, stored hash; salt = a random host key kept in
that directory + user id). PBKDF2 makes a stolen cache file about as costly
to attack as a SHA512-crypt hash; nothing else about the password is written.
A password change alters the stored hash and so misses; disabled users are
refused by the Authenticator before the cache is asked.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from ..services.login import LoginCache
from ..store.interfaces import User


class SharedLoginCache(LoginCache):
    ITERATIONS = 5000

    def __init__(self, directory: Path, ttl: float = 900.0, max_entries: int = 10_000):
        super().__init__(ttl=ttl, max_entries=max_entries)
        self.dir = Path(directory)
        self._host_key: bytes | None = None

    def _load_host_key(self) -> bytes:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.dir / "host.key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(100):  # another worker may be writing it right now
                key = path.read_bytes()
                if len(key) == 32:
                    return key
                time.sleep(0.01)
            raise OSError(f"{path} is not a login cache key") from None
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key

    def _shared_digest(self, login: str, password: str, user: User) -> bytes:
        if self._host_key is None:
            self._host_key = self._load_host_key()
        secret = "\0".join((login, password, user.password_hash)).encode("utf-8", "surrogatepass")
        return hashlib.pbkdf2_hmac("sha256", secret, self._host_key + b"%d" % user.id,
                                   self.ITERATIONS)

    def hit(self, login: str, password: str, user: User) -> bool:
        if super().hit(login, password, user):
            return True
        try:
            expiry, hexdigest = (self.dir / f"u{user.id}").read_text().split()
            if float(expiry) <= time.time():
                return False
            ok = hmac.compare_digest(bytes.fromhex(hexdigest),
                                     self._shared_digest(login, password, user))
        except (OSError, ValueError):
            return False
        if ok:
            super().remember(login, password, user)
        return ok

    def remember(self, login: str, password: str, user: User) -> None:
        super().remember(login, password, user)
        try:
            digest = self._shared_digest(login, password, user)
            path = self.dir / f"u{user.id}"
            tmp = path.with_name(f"{path.name}.{os.getpid()}")
            tmp.write_text(f"{time.time() + self.ttl:.0f} {digest.hex()}\n")
            os.replace(tmp, path)
        except OSError:
            pass  # this level is an optimisation only
