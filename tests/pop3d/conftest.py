"""A real pop3 service in-process on free loopback ports, its event loop in a
background thread so blocking clients (poplib, fetchmail, curl) can talk to it
from the test itself. One home per module; each test gets a fresh service and
fresh users (tests/support/inproc.py)."""
from __future__ import annotations

from tests.support.inproc import LOOPBACK_ONLY, InProcService, home_fixture, service_fixture

PASSWORD = "s3cret pass"  # a space inside: PASS takes the rest of the line


class Pop3Server(InProcService):
    name = "pop3"
    listener_names = ("pop3", "pop3s")
    base_settings = LOOPBACK_ONLY
    password = PASSWORD

    def deliver(self, address: str, data: bytes) -> int:
        return self.put(address, data).message_id

    def inbox(self, address: str):
        return self.messages(address)


_home = home_fixture("pop3home")
pop3 = service_fixture(Pop3Server)
