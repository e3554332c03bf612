"""Login for every protocol (SMTP AUTH, POP3, IMAP, later the web): SASL
PLAIN decoding, the per-IP throttle of failed logins, a short-lived cache of
verified credentials, and the bounded queue in front of the password checks.

Throttle: each failure appends a timestamp to DIR/run/authfail/<ip>, one file
per client address whatever the protocol, so every service and worker process
counts the same failures; with a shared store (several nodes on PostgreSQL)
the failures are rows of the store instead (`StoreThrottle`), so a node
counts the failures seen by every other (`throttle_for` picks). After `limits.auth_failures` within
`limits.auth_window`, logins from that address are refused without checking
the password until the oldest of those failures leaves the window.

Queue: an argon2 check costs 64 MiB and tens of milliseconds. Each process
runs at most `Authenticator.THREADS` at once and lets `limits.auth_queue` more
wait; beyond that a login is refused at once with a temporary error
(`LoginBusy`), so a flood of guesses costs the attacker time, not our memory.
The throttle and the cache are looked at before queueing, so a throttled
address never queues and a cached login never waits behind guesses.

Cache: POP3 and IMAP clients poll every few minutes with the same password, and each
argon2 check costs tens of milliseconds of CPU. After a successful check we
keep HMAC(process secret, login, password, stored hash) for a few minutes; a
later login with the same password against the same stored hash is accepted
without argon2. A password change alters the stored hash and so misses the
cache; a disabled user is refused because the user row is read every time.
No password is kept in memory.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..mail.address import AddressError, login_address
from ..store.interfaces import Store, User
from .accounts import Accounts


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def plaintext_login_allowed(*, tls: bool, ip: str, allow_plaintext: bool) -> bool:
    """May a client send a password in the clear here? Only over TLS, from
    this machine, or when policy.allow_plaintext_auth says so (INTERFACE.md)."""
    return tls or is_loopback(ip) or allow_plaintext


class SaslError(Exception):
    """A SASL response that cannot be accepted; each kind has its own reply."""


class SaslMalformed(SaslError):
    pass


class SaslProxyLogin(SaslError):
    pass


def split_plain(b64: str) -> tuple[str, str, str]:
    """RFC 4616 PLAIN: base64 of authzid NUL authcid NUL password (RFC 4954's
    "=" is an empty response). The one decoder for SMTP, POP3 and IMAP."""
    text = b64.strip()
    try:
        raw = b"" if text == "=" else base64.b64decode(text, validate=True)
        authzid, authcid, password = raw.decode("utf-8").split("\0")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SaslMalformed("malformed PLAIN response") from None
    return authzid, authcid, password


def decode_plain(b64: str) -> tuple[str, str]:
    """(login, password) of a PLAIN response; an empty login or password is
    malformed, and an authzid other than the login is refused (no proxy logins)."""
    authzid, authcid, password = split_plain(b64)
    if not authcid or not password:
        raise SaslMalformed("malformed PLAIN response")
    if authzid and authzid != authcid:
        raise SaslProxyLogin("logging in as another user is not allowed")
    return authcid, password


class LoginBusy(Exception):
    """Too many password checks are waiting in this process: a temporary refusal."""


class FailureThrottle:
    """Failures per client address, in files under `directory` (blocking
    file I/O: call it from a thread, or through Authenticator's async methods)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def _path(self, ip: str) -> Path:
        safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in ip)
        return self.dir / safe

    def _recent(self, ip: str, window: float, now: float) -> list[float]:
        try:
            text = self._path(ip).read_text()
        except (FileNotFoundError, OSError):
            return []
        out = []
        for line in text.split():
            try:
                t = float(line)
            except ValueError:
                continue
            if now - t < window:
                out.append(t)
        return out

    def blocked_for(self, ip: str, limit: int, window: float) -> float:
        """Seconds this address must still wait; 0 when it may try."""
        now = time.time()
        recent = self._recent(ip, window, now)
        if len(recent) < limit:
            return 0.0
        recent.sort()
        return max(1.0, recent[-limit] + window - now)

    def clear(self) -> None:
        """Forget every failure (tests; an admin's reset)."""
        for p in self.dir.glob("*"):
            try:
                p.unlink()
            except OSError:
                pass

    def record_failure(self, ip: str, window: float) -> None:
        now = time.time()
        path = self._path(ip)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            recent = self._recent(ip, window, now)
            if len(recent) > 64:  # keep the file short: rewrite without stale entries
                tmp = path.with_name(path.name + f".{os.getpid()}")
                tmp.write_text("".join(f"{t:.3f}\n" for t in recent[-64:]))
                os.replace(tmp, path)
            with open(path, "a") as f:  # one small O_APPEND write: safe across processes
                f.write(f"{now:.3f}\n")
        except OSError:
            pass  # a throttle that cannot write must never stop logins for everyone


class StoreThrottle(FailureThrottle):
    """The same throttle over the store's auth_failures rows: one count for
    every node of a shared system (blocking: call it from a thread)."""

    def __init__(self, store: Store):
        self.store = store

    def _recent(self, ip: str, window: float, now: float) -> list[float]:
        try:
            return self.store.auth_failures(ip, now - window)
        except Exception:  # noqa: BLE001 - the database away must not stop every login
            return []

    def clear(self) -> None:
        self.store.auth_failures_clear()

    def record_failure(self, ip: str, window: float) -> None:
        now = time.time()
        try:
            self.store.auth_failure_add(ip, now, forget_before=now - max(window, 3600.0))
        except Exception:  # noqa: BLE001
            pass


def throttle_for(store: Store, run_dir: Path) -> FailureThrottle:
    """The throttle of a service: the store's when several nodes share it,
    else the files under DIR/run/authfail (no database write per failure)."""
    return StoreThrottle(store) if store.shared else FailureThrottle(Path(run_dir) / "authfail")


class LoginCache:
    """With ``shared_dir`` and ``key``, entries are also files there (user id
    -> expiry and HMAC), so a login checked by one worker process is a hit in
    its siblings. The key is made by the service's runner and handed to its
    workers in memory (ServiceContext.login_key), never written to disk, so
    the files are useless to anyone who can read them."""

    def __init__(self, ttl: float = 300.0, max_entries: int = 10_000,
                 shared_dir: Path | None = None, key: bytes | None = None):
        self.ttl = ttl
        self.max_entries = max_entries
        # Without a shared key the files could not be read by a sibling anyway.
        self.shared_dir = Path(shared_dir) if shared_dir is not None and key else None
        self._key = key or secrets.token_bytes(32)
        self._seen: dict[int, tuple[bytes, float]] = {}

    def _digest(self, login: str, password: str, user: User) -> bytes:
        msg = "\0".join((login, password, user.password_hash)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def hit(self, login: str, password: str, user: User) -> bool:
        got = self._seen.get(user.id)
        if (got is None or got[1] < time.monotonic()) and self.shared_dir is not None:
            got = self._load(user.id)
        if got is None or got[1] < time.monotonic():
            return False
        return hmac.compare_digest(got[0], self._digest(login, password, user))

    def _load(self, user_id: int) -> tuple[bytes, float] | None:
        try:
            expiry, digest = (self.shared_dir / str(user_id)).read_text().split()
            left = float(expiry) - time.time()
            return (bytes.fromhex(digest), time.monotonic() + left) if left > 0 else None
        except (OSError, ValueError):
            return None

    def remember(self, login: str, password: str, user: User) -> None:
        if len(self._seen) >= self.max_entries:
            self._seen.clear()
        digest = self._digest(login, password, user)
        self._seen[user.id] = (digest, time.monotonic() + self.ttl)
        if self.shared_dir is not None:
            try:
                self.shared_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                tmp = self.shared_dir / f".{user.id}.{os.getpid()}"
                tmp.write_text(f"{time.time() + self.ttl:.0f} {digest.hex()}")
                os.replace(tmp, self.shared_dir / str(user.id))
            except OSError:
                pass  # the in-process cache still works


class Authenticator:
    """Everything a login needs: `login_async` on the event loop (the throttle
    and the cache on a thread, the password check on the authenticator's own
    bounded pool), or `login`, one blocking call."""

    THREADS = 2   # argon2 checks at once per process: more only queue for the CPU

    def __init__(self, store: Store, throttle: FailureThrottle, cache: LoginCache | None,
                 queue: int | Callable[[], int] = 16):
        self.store = store
        self.throttle = throttle
        self.cache = cache
        self._queue = queue if callable(queue) else (lambda: queue)
        self._pool: ThreadPoolExecutor | None = None   # made on first use: after the fork
        self.checking = 0   # password checks running or waiting for the pool

    async def blocked_for(self, ip: str, limit: int, window: float) -> float:
        """The throttle's answer without blocking the loop."""
        return await asyncio.to_thread(self.throttle.blocked_for, ip, limit, window)

    async def record_failure(self, ip: str, window: float) -> None:
        await asyncio.to_thread(self.throttle.record_failure, ip, window)

    async def login_async(self, login: str, password: str, ip: str, *, domain: str, limit: int,
                          window: float) -> tuple[User | None, float]:
        """As `login`; raises LoginBusy when the password check would have to
        queue behind more than limits.auth_queue others."""
        done, result = await asyncio.to_thread(self._before_check, login, password, ip,
                                               domain, limit, window)
        if done:
            return result
        if self.checking >= self.THREADS + max(0, self._queue()):
            raise LoginBusy("too many logins are being checked; try again shortly")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.THREADS, thread_name_prefix="login")
        self.checking += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, self._check, login, password, ip, domain, window)
        finally:
            self.checking -= 1

    def login(self, login: str, password: str, ip: str, *, domain: str, limit: int,
              window: float) -> tuple[User | None, float]:
        """(user, 0) on success; (None, 0) for wrong credentials or a disabled
        user; (None, seconds) when the address is throttled."""
        done, result = self._before_check(login, password, ip, domain, limit, window)
        return result if done else self._check(login, password, ip, domain, window)

    def _before_check(self, login: str, password: str, ip: str, domain: str, limit: int,
                      window: float) -> tuple[bool, tuple[User | None, float]]:
        """The cheap part: (True, result) when the throttle or the cache
        answers, (False, _) when the password must be checked."""
        wait = self.throttle.blocked_for(ip, limit, window)
        if wait:
            return True, (None, wait)
        if self.cache is not None:
            try:
                a = login_address(login, domain)
                user = self.store.get_user(a.key)
            except AddressError:
                user = None
            if user is not None and user.enabled and self.cache.hit(login, password, user):
                return True, (user, 0.0)
        return False, (None, 0.0)

    def _check(self, login: str, password: str, ip: str, domain: str,
               window: float) -> tuple[User | None, float]:
        user = Accounts(self.store, domain).authenticate(login, password)
        if user is None:
            self.throttle.record_failure(ip, window)
            return None, 0.0
        if self.cache is not None:
            self.cache.remember(login, password, user)
        return user, 0.0
