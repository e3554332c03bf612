"""Open SMTP connections kept for the next message to the same host.

Why: connect, greeting, EHLO (and STARTTLS) cost more round trips than the
transaction itself, and a queue often holds many messages for one host. A
connection goes back here only after a transaction that ended in a 250 to
the data, with no negative reply and no time-out (session.py decides); it is
checked with RSET before it carries anything else. Idle connections are
closed after ``idle`` seconds, and none carries more than ``max_messages``
messages or lives longer than ``max_age``, so a host that changed its mind
(or its certificate) is met afresh before long.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field

import aiosmtplib

IDLE = 5.0            # seconds an unused connection stays open
MAX_MESSAGES = 100    # messages per connection, then a fresh one
MAX_AGE = 300.0       # seconds a connection may live, however busy


@dataclass(eq=False)
class Connection:
    """A connected, greeted client; ``key`` is (address, port, helo, tls wanted)."""

    client: aiosmtplib.SMTP
    key: tuple
    tls: bool = False      # STARTTLS done
    opened: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)
    messages: int = 0


def opportunistic_tls() -> ssl.SSLContext:
    """TLS that encrypts without checking the certificate (RFC 7435): most MX
    hosts have no certificate for their name, and refusing them would send
    the mail in clear text instead, which is worse."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ConnectionCache:
    """Idle connections by key, and the one client TLS context they all use
    (made on first STARTTLS: loading it costs more than a handshake)."""

    def __init__(self, idle: float = IDLE, max_messages: int = MAX_MESSAGES,
                 max_age: float = MAX_AGE, max_per_key: int = 50):
        self.idle, self.max_messages, self.max_age = idle, max_messages, max_age
        self.max_per_key = max_per_key
        self._idle: dict[tuple, list[Connection]] = defaultdict(list)
        self._closing: set[asyncio.Task] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.reused = 0   # counters for the log and the tests
        self.opened = 0
        self._tls: ssl.SSLContext | None = None

    @property
    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = opportunistic_tls()
        return self._tls

    def take(self, key: tuple) -> Connection | None:
        """The most recently used idle connection for ``key`` that is still
        young enough, or None. The caller checks it with RSET."""
        stack = self._idle.get(key)
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            if self._fresh(conn, now) and conn.client.is_connected:
                if not stack:
                    del self._idle[key]
                return conn
            self.discard(conn)
        self._idle.pop(key, None)
        return None

    def put(self, conn: Connection) -> None:
        """Keep ``conn`` for the next message, unless it has done its share."""
        conn.used = time.monotonic()
        stack = self._idle[conn.key]
        if (conn.messages >= self.max_messages or not self._fresh(conn, conn.used)
                or len(stack) >= self.max_per_key or not conn.client.is_connected):
            if not stack:
                del self._idle[conn.key]
            self.discard(conn)
            return
        stack.append(conn)
        self._schedule_sweep()

    def idle_count(self) -> int:
        return sum(len(s) for s in self._idle.values())

    def _fresh(self, conn: Connection, now: float) -> bool:
        return now - conn.used < self.idle and now - conn.opened < self.max_age

    def _schedule_sweep(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self.idle / 2, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        for key in list(self._idle):
            keep = []
            for conn in self._idle[key]:
                (keep.append if self._fresh(conn, now) else self.discard)(conn)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        if self._idle:
            self._schedule_sweep()

    def discard(self, conn: Connection) -> None:
        """Say QUIT politely in the background; the socket closes either way."""
        task = asyncio.get_running_loop().create_task(quit_and_close(conn.client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for stack in self._idle.values():
            for conn in stack:
                self.discard(conn)
        self._idle.clear()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=6)


async def quit_and_close(client: aiosmtplib.SMTP, timeout: float = 5) -> None:
    try:
        if client.is_connected:
            await client.quit(timeout=timeout)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        client.close()
