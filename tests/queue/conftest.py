"""A deliveragent running in the test's event loop over a real home, and
helpers to queue messages the way the SMTP service does (blob + enqueue)."""
from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from coremail.app import build_context
from coremail.obs.log import Log, parse_line
from coremail.queue.scheduler import DeliverAgent
from coremail.services.home import init_home
from coremail.services.settings import set_value
from coremail.store.blobs import new_id
from tests.support.peers import HAVE_POSTFIX, HAVE_SINK
from tests.support.testdb import home_database

needs_postfix = pytest.mark.skipif(not HAVE_POSTFIX, reason="needs root and Postfix")
needs_sink = pytest.mark.skipif(not HAVE_SINK, reason="needs smtp-sink (postfix package)")


def message(subject: str = "hello", msgid: str | None = None, extra: bytes = b"",
            body: bytes = b"Hello there.\r\n") -> bytes:
    msgid = msgid or f"<{new_id()}@example.test>"
    return (b"From: Sender <sender@example.test>\r\nTo: someone\r\n"
            + f"Subject: {subject}\r\nMessage-ID: {msgid}\r\n".encode() + extra
            + b"\r\n" + body)


@dataclass
class Harness:
    home: Path
    ctx: object
    agent: DeliverAgent | None = None
    stream: io.StringIO | None = None

    @property
    def store(self):
        return self.ctx.store

    def set(self, key: str, value: str) -> None:
        self.ctx.config.current = set_value(self.home, key, value)

    def queue(self, data: bytes, sender: str, recipients: list[str], kind: str = "out") -> str:
        blob = self.store.blobs.write(data)
        qid = blob.id
        self.store.enqueue(queue_id=qid, blob=blob, sender=sender, recipients=recipients,
                           kind=kind)
        if self.agent is not None:
            self.agent.wake()
        return qid

    async def start(self) -> DeliverAgent:
        self.agent = DeliverAgent(self.ctx)
        await self.agent.start()
        return self.agent

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop(5)
            self.agent = None

    async def until(self, cond, timeout: float = 20, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(cond):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.logtext()}")

    async def drained(self, timeout: float = 20) -> None:
        await self.until(lambda: not self.store.queue_list(), timeout, "an empty queue")

    def logtext(self) -> str:
        return self.stream.getvalue() if self.stream else ""

    def events(self, name: str) -> list[dict]:
        return [d for d in map(parse_line, self.logtext().splitlines()) if d.get("event") == name]

    def inbox(self, address: str) -> list[bytes]:
        user = self.store.get_user(address)
        folder = self.store.get_folder(user.id, "INBOX")
        return [self.store.blobs.read(m.blob_id) for m in self.store.list_messages(folder.id)]


@pytest.fixture
async def harness(tmp_path):
    home = tmp_path / "home"
    init_home(home, "example.test", admin_password="admin-pass-1", privileged=False,
              database=home_database())
    for key, value in (("delivery.retry_intervals", '["1s"]'),
                       ("delivery.connect_timeout", '"3s"'),
                       ("server.hostname", '"mail.example.test"')):
        set_value(home, key, value)
    ctx = build_context(home, "deliveragent")
    stream = io.StringIO()
    ctx.log = Log("deliveragent", stream=stream)
    ctx.store.add_user("sender@example.test", password_hash="x", quota=0)
    h = Harness(home, ctx, stream=stream)
    yield h
    await h.stop()
    ctx.store.close()
