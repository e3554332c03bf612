"""What the pipeline knows about a session and a transaction: the client
(address, listener, TLS, logged-in user) and the envelope built up by MAIL and
RCPT. Plain data, shared by the SMTP engine's handler and the rules."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..mail.address import Address
from ..store.interfaces import User


@dataclass
class Client:
    ip: str
    listener: str = "smtp"          # "smtp" (MX, 25), "submission" (587), "smtps" (465)
    helo: str = ""
    tls: bool = False
    user: User | None = None        # set by a successful AUTH
    sid: str = ""

    @property
    def authenticated(self) -> bool:
        return self.user is not None


@dataclass
class Recipient:
    """An accepted RCPT and where it leads."""

    raw: str                                          # as the client wrote it
    address: Address
    users: list[User] = field(default_factory=list)   # local INBOXes
    remote: list[str] = field(default_factory=list)   # for the outbound queue
    relay: bool = False                               # a non-local recipient (authenticated)


@dataclass
class Envelope:
    sender: Address | None = None     # None: the null sender <>
    sender_raw: str = ""
    declared_size: int = 0
    smtputf8: bool = False
    body: str = "7BIT"
    recipients: list[Recipient] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)  # (raw rcpt, "code enh") for logs

    @property
    def sender_text(self) -> str:
        return str(self.sender) if self.sender is not None else ""
