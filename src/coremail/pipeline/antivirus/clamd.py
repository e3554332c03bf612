"""An asyncio client for ClamAV's clamd: INSTREAM over a Unix socket or TCP,
PING/VERSION for `status`, connections kept open with IDSESSION and reused.

Hand-written on purpose: clamd's protocol is a few null-terminated commands
and length-prefixed chunks, and the Python clients on PyPI (pyclamd, clamd)
are unmaintained, blocking-socket code without sessions or asyncio.
"""
from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

CHUNK = 256 * 1024        # bytes per INSTREAM chunk
IDLE = 20.0               # seconds a spare connection is kept (clamd's IdleTimeout is 30 s)


class ClamdError(Exception):
    """clamd could not scan: down, refusing, or answering with an error (words)."""


class ClamdTooBig(ClamdError):
    """The message is over clamd's StreamMaxLength."""


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """("unix", path) or ("tcp", (host, port)) from "unix:/p", "/p", "host:port"."""
    a = address.strip()
    if a.startswith("unix:"):
        return "unix", a[5:]
    if a.startswith("/"):
        return "unix", a
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r} is not a clamd address: use unix:/path or HOST:PORT")
    return "tcp", (host.strip("[]") or "127.0.0.1", int(port))


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    next_id: int = 1
    used: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        self.writer.close()

    async def command(self, cmd: bytes, body: bytes | memoryview | None = None) -> str:
        """One command in the session; its reply without the "N: " prefix."""
        want = self.next_id
        self.next_id += 1
        try:
            self.writer.write(b"z" + cmd + b"\0")
            if body is not None:
                view = memoryview(body)
                for i in range(0, len(view), CHUNK):
                    part = view[i:i + CHUNK]
                    self.writer.write(struct.pack(">I", len(part)))
                    self.writer.write(part)
                    await self.writer.drain()
                self.writer.write(struct.pack(">I", 0))
            await self.writer.drain()
            raw = await self.reader.readuntil(b"\0")
        except ConnectionError:
            # clamd stops reading past StreamMaxLength and resets the connection;
            # its reply saying so is already in the reader's buffer
            said = bytes(self.reader._buffer)  # type: ignore[attr-defined]
            if b"\0" not in said:
                raise
            raw = said[:said.index(b"\0") + 1]
        text = raw[:-1].decode("utf-8", "replace").strip()
        num, sep, rest = text.partition(": ")
        if sep and num.isdigit():
            if int(num) != want:
                raise ClamdError(f"clamd answered request {num}, not {want}")
            text = rest
        self.used = time.monotonic()
        return text


class Clamd:
    """The connections of one process to one clamd: at most `connections` at
    once (clamd's MaxThreads bounds it anyway); spare ones are reused."""

    def __init__(self, address: str, connections: int = 10):
        self.address = address
        self.kind, self.where = parse_address(address)
        self.slots = asyncio.Semaphore(connections)
        self.spare: list[_Conn] = []

    async def _open(self) -> _Conn:
        try:
            if self.kind == "unix":
                r, w = await asyncio.open_unix_connection(self.where)
            else:
                host, port = self.where
                r, w = await asyncio.open_connection(host, port)
        except FileNotFoundError:
            raise ClamdError(f"clamd is not running (no socket at {self.where})") from None
        except ConnectionRefusedError:
            raise ClamdError(f"clamd at {self.address} refused the connection "
                             "(not running?)") from None
        except OSError as e:
            raise ClamdError(f"clamd at {self.address} cannot be reached: "
                             f"{e.strerror or e}") from None
        c = _Conn(r, w)
        w.write(b"zIDSESSION\0")
        return c

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self.spare:
            c = self.spare.pop()
            if now - c.used < IDLE and not c.reader.at_eof() and not c.writer.is_closing():
                return c
            c.close()
        return None

    async def _run(self, cmd: bytes, body: bytes | None = None) -> str:
        async with self.slots:
            conn = self._take()
            reused = conn is not None
            while True:
                if conn is None:
                    conn = await self._open()
                done = False
                try:
                    reply = await conn.command(cmd, body)
                    done = True
                except (asyncio.IncompleteReadError, ConnectionError) as e:
                    if reused:
                        # clamd closed a spare connection meanwhile: once more, on a fresh one
                        conn.close()
                        reused, conn = False, None
                        continue
                    raise ClamdError(f"clamd at {self.address} closed the connection "
                                     f"({type(e).__name__})") from None
                except asyncio.LimitOverrunError:
                    raise ClamdError("clamd's reply is too long") from None
                finally:
                    # a cancelled or failed exchange leaves the session unusable
                    if not done and conn is not None:
                        conn.close()
                if reply.endswith("ERROR"):
                    conn.close()
                    if "size limit" in reply:
                        raise ClamdTooBig(reply)
                    raise ClamdError(f"clamd answered: {reply}")
                self.spare.append(conn)
                return reply

    async def scan(self, data: bytes) -> str | None:
        """The name of the virus found in `data`, or None when clean."""
        reply = await self._run(b"INSTREAM", data)
        if reply.endswith(" FOUND"):
            return reply.removeprefix("stream:").strip()[:-6].strip()
        if reply.endswith("OK"):
            return None
        raise ClamdError(f"clamd answered: {reply}")

    async def version(self) -> str:
        """clamd's version line (it answers: it is up)."""
        return await self._run(b"VERSION")

    def close(self) -> None:
        for c in self.spare:
            c.close()
        self.spare.clear()


async def probe(address: str, timeout: float = 3.0) -> str:
    """For `coremail status`/`doctor`: clamd's version, or ClamdError in words."""
    c = Clamd(address, 1)
    try:
        async with asyncio.timeout(timeout):
            return await c.version()
    except TimeoutError:
        raise ClamdError(f"clamd at {address} did not answer within {timeout:g} s") from None
    finally:
        c.close()
