"""A second level for services.login.LoginCache, shared by the POP3 workers
of one host, so a polling user costs one argon2 check per TTL instead of one
per worker process (the kernel spreads a client's connections over workers).

One file per user in a 0700 directory under DIR/run: the expiry and
PBKDF2-SHA256(login, password, stored hash; salt = the service's process key
+ user id). The process key is made by the service's manager at start and
handed to its workers in their environment; it never reaches the disk, so a
stolen cache file cannot be attacked offline at all, and a restart of the
service empties the cache.
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

from ..proto.listen import PROCESS_KEY_ENV
from ..services.login import LoginCache
from ..store.interfaces import User


class SharedLoginCache(LoginCache):
    ITERATIONS = 5000

    def __init__(self, directory: Path, ttl: float = 900.0, max_entries: int = 10_000):
        super().__init__(ttl=ttl, max_entries=max_entries)
        self.dir = Path(directory)
        self._host_key: bytes | None = None

    def _load_host_key(self) -> bytes:
        key = os.environ.get(PROCESS_KEY_ENV, "")
        if len(key) < 32:  # run outside the supervisor: this process alone
            key = os.environ.setdefault(PROCESS_KEY_ENV, secrets.token_hex(32))
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return key.encode()

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
