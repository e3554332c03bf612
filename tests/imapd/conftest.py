"""A real imap service in-process on free loopback ports, its event loop in a
background thread so blocking clients (imaplib, mbsync, curl) can talk to it
from the test itself. One home per module; each test gets a fresh service and
fresh users (tests/support/inproc.py)."""
from __future__ import annotations

import imaplib
import time

import pytest

from coremail.mail.mime import summarize
from tests.support.inproc import LOOPBACK_ONLY, InProcService, home_fixture, service_fixture

PASSWORD = "s3cret-pass"


class ImapServer(InProcService):
    name = "imap"
    listener_names = ("imap", "imaps")
    base_settings = LOOPBACK_ONLY
    password = PASSWORD

    def deliver(self, address: str, data: bytes, folder: str = "INBOX", flags=()) -> int:
        return self.put(address, data, folder=folder, flags=frozenset(flags),
                        meta=summarize(data)).uid

    def client(self, address: str, password: str = PASSWORD) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        c.login(address, password)
        return c


_home = home_fixture("imaphome")
imap = service_fixture(ImapServer)


@pytest.fixture
def alice(imap):
    imap.add_user("alice@example.test")
    return "alice@example.test"


def wait_for(pred, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.02)
    return pred()
