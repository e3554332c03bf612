"""The SMTP policy: verdicts on a sender, a recipient and a message.

Relay rules (including the old source-routing tricks), limits, quotas and the
sender-address rule for logged-in users live here and nowhere else. Every
method is synchronous (it may read the store): the SMTP handler runs it in a
worker thread. Message checks are a list, so spam/virus/SPF/DKIM verdicts can
be appended later without touching the engine.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

from ..config import Settings
from ..mail.address import Address, AddressError, parse_address
from ..services.recipients import Expansion, Recipients
from ..store.interfaces import Store
from .envelope import Client, Envelope, Recipient
from .verdict import AUTH_REQUIRED, RELAY_DENIED, TOO_MANY_RECIPIENTS, Verdict, ok

MAX_HOPS = 50   # Received headers: more means a mail loop (RFC 5321 6.3)


class MessageCheck(Protocol):
    """One verdict on a whole message; None means "no objection"."""

    def __call__(self, client: Client, env: Envelope, header: bytes, size: int,
                 settings: Settings) -> Verdict | None: ...


def header_section(content: bytes, limit: int) -> bytes | None:
    """The header section (up to the blank line) if it ends within `limit`
    bytes, else None."""
    if content[:2] == b"\r\n":
        return b""
    end = content.find(b"\r\n\r\n", 0, limit + 4)
    if end < 0:
        return bytes(content) if len(content) <= limit else None
    return bytes(content[:end + 2]) if end + 2 <= limit else None


def check_hops(client: Client, env: Envelope, header: bytes, size: int,
               settings: Settings) -> Verdict | None:
    hops = header.lower().count(b"\nreceived:") + header[:9].lower().startswith(b"received:")
    if hops > MAX_HOPS:
        return Verdict(554, "5.4.6", f"the message has passed through {hops} servers; "
                                     "there is probably a mail loop")
    return None


def _size_words(n: int) -> str:
    for unit, div in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= div:
            return f"{n / div:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def _relay_trick(mailbox: str) -> str | None:
    """A local part that asks the receiving host to route the mail on."""
    local = mailbox.rpartition("@")[0]
    if "@" in local:
        return "an address with a second '@'"
    if "%" in local:
        return "'%' routing in the local part"
    if "!" in local:
        return "'!' (UUCP) routing in the local part"
    return None


class CachedRecipients(Recipients):
    """Recipients with the local-domain list cached for a few seconds: the
    RCPT path asks it for every address and domains change rarely."""

    TTL = 5.0

    def __init__(self, store: Store):
        super().__init__(store)
        self._domains: dict[str, tuple[float, bool]] = {}

    def cached_domain(self, domain: str) -> bool | None:
        hit = self._domains.get(domain)
        if hit is not None and time.monotonic() - hit[0] < self.TTL:
            return hit[1]
        return None

    def is_local_domain(self, domain: str) -> bool:
        now = time.monotonic()
        hit = self._domains.get(domain)
        if hit is not None and now - hit[0] < self.TTL:
            return hit[1]
        local = self.store.get_domain(domain) is not None
        if len(self._domains) > 10000:
            self._domains.clear()
        self._domains[domain] = (now, local)
        return local


class ExpansionCache:
    """Where an address led, for one second. RCPT is the hottest path of an
    MX; the quota seen here may be a second old, which is safe because the
    store checks the quota again, atomically, when the message commits.
    Only found addresses are kept, so a user just added is never refused."""

    TTL = 1.0

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, Expansion]] = {}

    def get(self, key: str) -> Expansion | None:
        hit = self.entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.TTL:
            return hit[1]
        return None

    def put(self, key: str, exp: Expansion) -> None:
        if len(self.entries) > 50000:
            self.entries.clear()
        self.entries[key] = (time.monotonic(), exp)

    def clear(self) -> None:
        self.entries.clear()


class Pipeline:
    def __init__(self, store: Store, settings: Callable[[], Settings],
                 checks: list[MessageCheck] | None = None):
        self.store = store
        self.settings = settings
        self.recipients = CachedRecipients(store)
        self.expansions = ExpansionCache()
        self.checks: list[MessageCheck] = list(checks) if checks is not None else [check_hops]

    # ---------------------------------------------------------------- sender
    def sender(self, client: Client, mailbox: str, *, declared_size: int = 0,
               smtputf8: bool = False) -> tuple[Verdict, Address | None]:
        s = self.settings()
        if client.listener != "smtp" and not client.authenticated:
            return AUTH_REQUIRED, None
        limit = int(s.limits.max_message_size)
        if declared_size > limit:
            return self.oversize(declared_size, limit), None
        if mailbox == "":
            return ok("sender ok (null sender)", "2.1.0"), None
        try:
            addr = parse_address(mailbox)
        except AddressError as e:
            return Verdict(553, "5.1.3", f"malformed sender address: {e}"), None
        if not smtputf8 and not str(addr).isascii():
            return Verdict(553, "5.6.7", "the sender address is not ASCII; the client must "
                                         "use MAIL FROM:<...> SMTPUTF8"), None
        if client.user is not None and not s.policy.allow_sender_mismatch:
            if not self._owns(client, addr):
                return Verdict(553, "5.7.1", f"you are logged in as {client.user.address} and "
                               f"may not send as {addr}; use your own address or one of "
                               "your aliases"), None
        return ok(f"sender <{addr}> ok", "2.1.0"), addr

    def _owns(self, client: Client, addr: Address) -> bool:
        user = client.user
        assert user is not None
        if addr.key == user.address:
            return True
        if not self.recipients.is_local_domain(addr.domain):
            return False
        if user.address in self.store.alias_targets(addr.key):
            return True
        return any(u.id == user.id for u in self.recipients.expand(addr).users)

    @staticmethod
    def oversize(size: int, limit: int) -> Verdict:
        return Verdict(552, "5.3.4", f"the message is {_size_words(size)} but this server "
                       f"accepts at most {_size_words(limit)}; send a smaller message or "
                       "share the file another way")

    def size_limit(self) -> int:
        return int(self.settings().limits.max_message_size)

    # ------------------------------------------------------------- recipient
    def recipient(self, client: Client, env: Envelope, mailbox: str,
                  route: tuple[str, ...] = (), *, store_ok: bool = True
                  ) -> tuple[Verdict, Recipient | None] | None:
        """The verdict on one RCPT. With store_ok=False only what is cached is
        used, and None means "ask again with the store" (from a thread)."""
        s = self.settings()
        if len(env.recipients) >= s.limits.max_recipients:
            return Verdict(452, "4.5.3", TOO_MANY_RECIPIENTS.format(n=s.limits.max_recipients)), None
        if not client.authenticated:
            trick = _relay_trick(mailbox)
            if trick:
                return Verdict(550, "5.7.1", f"relaying denied: {trick} is not accepted "
                                             "here"), None
        if mailbox.strip().lower() == "postmaster":
            # RFC 5321 4.1.1.3: a bare <Postmaster> reaches this server's postmaster.
            mailbox = f"postmaster@{s.server.domain}"
        try:
            addr = parse_address(mailbox)
        except AddressError as e:
            return Verdict(553, "5.1.3", f"malformed recipient address: {e}"), None
        if not env.smtputf8 and not str(addr).isascii():
            return Verdict(553, "5.6.7", "the recipient address is not ASCII; the client must "
                                         "use MAIL FROM:<...> SMTPUTF8"), None
        local = (self.recipients.is_local_domain(addr.domain) if store_ok
                 else self.recipients.cached_domain(addr.domain))
        if local is None:
            return None
        if not local:
            if not client.authenticated:
                return RELAY_DENIED, None
            return ok(f"recipient <{addr}> ok (relay)", "2.1.5"), Recipient(
                mailbox, addr, remote=[str(addr)], relay=True)
        exp = self.expansions.get(addr.key)
        if exp is None:
            if not store_ok:
                return None
            exp = self.recipients.expand(addr)
            if exp.users or exp.remote:
                self.expansions.put(addr.key, exp)
        if not exp.users and not exp.remote:
            if exp.loop:
                return Verdict(550, "5.4.6", f"the address <{addr}> forwards in a loop; "
                               "tell the postmaster of this domain"), None
            return Verdict(550, "5.1.1", f"no mailbox here by the name <{addr}>; check the "
                           "spelling of the address"), None
        full = self._over_quota(exp, env.declared_size)
        if full and len(full) == len(exp.users) and not exp.remote:
            return Verdict(552, "5.2.2", f"the mailbox of <{addr}> is full; the recipient "
                           "must delete messages before receiving more"), None
        return ok(f"recipient <{addr}> ok", "2.1.5"), Recipient(
            mailbox, addr, users=[u for u in exp.users if u.id not in full],
            remote=list(exp.remote))

    @staticmethod
    def _over_quota(exp: Expansion, declared: int) -> set[int]:
        return {u.id for u in exp.users
                if u.quota and u.used_bytes + max(declared, 1) > u.quota}

    # --------------------------------------------------------------- message
    def message(self, client: Client, env: Envelope, content: bytes,
                size: int) -> Verdict:
        s = self.settings()
        limit = int(s.limits.max_message_size)
        if size > limit:
            return self.oversize(size, limit)
        header = header_section(content, int(s.limits.max_header_size))
        if header is None:
            return Verdict(552, "5.3.4", "the message header is larger than "
                           f"{_size_words(int(s.limits.max_header_size))}; this server "
                           "refuses it")
        for check in self.checks:
            v = check(client, env, header, size, s)
            if v is not None and not v.ok:
                return v
        return ok("message ok")
