"""The SMTP policy: verdicts on a login, a sender, a recipient and a message.

Relay rules (including the old source-routing tricks), limits, quotas, the
TLS-before-AUTH and sender-address rules for logged-in users live here and
nowhere else. The rules themselves are synchronous (`sender`, `recipient`
may read the store); the SMTP handler and the webmail call the async
`check_*` forms, which answer from caches on the event loop and put store
reads on the pipeline's threads. Message checks are async callables
(pipeline.checks) whose results pipeline.decide sums.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Callable, Sequence

from ..config import Settings
from ..ingest.recipients import Expansion, Recipients, TtlCache
from ..mail.address import Address, AddressError, parse_address
from ..mail.headers import header_section
from ..mail.srs import Srs, SrsForged, is_srs
from ..obs.log import Log
from ..store.interfaces import Store
from .checks import Message, MessageCheck
from .decide import Decision, decide
from .registry import CheckContext, default_checks
from .envelope import Client, Envelope, Recipient
from .lists import rcpt_verdict
from .verdict import AUTH_REQUIRED, RELAY_DENIED, TOO_MANY_RECIPIENTS, Verdict, ok

__all__ = ["Pipeline", "header_section"]

NOT_ASCII_SENDER = Verdict(553, "5.6.7", "the sender address is not ASCII; the client must use "
                                        "MAIL FROM:<...> SMTPUTF8")
CHECK_TIMEOUT = 20.0   # seconds one message check may take before it is skipped
# Directory harvest: this many unknown recipients in a session are answered
# at once (a typo, a stale address); each later one waits twice as long as
# the one before, from HARVEST_DELAY seconds, up to HARVEST_DELAY_MAX.
HARVEST_FREE = 2
HARVEST_DELAY = 1.0
HARVEST_DELAY_MAX = 30.0
HARVEST_END = Verdict(421, "4.7.0", "too many unknown recipients in this session; closing the "
                                    "connection")


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


class ExpansionCache(TtlCache[Expansion]):
    """Where an address led, for one second. RCPT is the hottest path of an
    MX; the quota seen here may be a second old, which is safe because the
    store checks the quota again, atomically, when the message commits.
    Only found addresses are kept, so a user just added is never refused."""

    def __init__(self) -> None:
        super().__init__(ttl=1.0, size=50000)


class Pipeline:
    def __init__(self, store: Store, settings: Callable[[], Settings],
                 checks: Sequence[MessageCheck] | None = None, *,
                 executor: Executor | None = None, log: Log | None = None,
                 srs: Srs | None = None):
        self.store = store
        self.settings = settings
        self.srs = srs   # bounces to the SRS senders of our forwards
        self.recipients = Recipients(store)
        self.expansions = ExpansionCache()
        self.executor = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="policy")
        self.log = log
        self.context = CheckContext(store, settings, executor=self.executor, log=log,
                                    recipients=self.recipients)
        self.checks: list[MessageCheck] = (list(checks) if checks is not None
                                           else default_checks(self.context))

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # ------------------------------------------------------------------ login
    @staticmethod
    def auth_start(client: Client) -> Verdict | None:
        """May this session try AUTH at all? Only over TLS (INTERFACE.md), on
        every listener including loopback: a password never crosses in clear."""
        if not client.tls:
            return Verdict(538, "5.7.11", "encryption required: use STARTTLS (or port 465) "
                                          "before AUTH")
        return None

    @staticmethod
    def authorization(authzid: str, login: str) -> Verdict | None:
        """RFC 4616's authorisation identity: logging in as yourself only."""
        if authzid and authzid != login:
            return Verdict(535, "5.7.8", "logging in on behalf of another user is not allowed")
        return None

    # ------------------------------------------------------ async, for front ends
    async def check_sender(self, client: Client, mailbox: str, *, declared_size: int = 0,
                           smtputf8: bool = False) -> tuple[Verdict, Address | None]:
        if client.user is None and client.listener == "smtp":
            # The MX's rules read nothing from the store: no thread needed.
            return self.sender(client, mailbox, declared_size=declared_size, smtputf8=smtputf8)
        return await self._run(lambda: self.sender(client, mailbox, declared_size=declared_size,
                                                   smtputf8=smtputf8))

    async def check_recipient(self, client: Client, env: Envelope, mailbox: str,
                              route: tuple[str, ...] = ()) -> tuple[Verdict, Recipient | None]:
        # Cached answers come straight back; anything needing the store goes to a thread.
        got = self.recipient(client, env, mailbox, route, store_ok=False)
        if got is None:
            got = await self._run(self.recipient, client, env, mailbox, route)
        assert got is not None
        if self.context.rules.pending:     # a block rule refused it: its hit counted soon
            self.context.rule_hits.schedule()
        return got

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
        if not smtputf8 and not mailbox.isascii():
            return NOT_ASCII_SENDER, None
        try:
            addr = parse_address(mailbox)
        except AddressError as e:
            return Verdict(553, "5.1.3", f"malformed sender address: {e}"), None
        if not smtputf8 and not str(addr).isascii():
            return NOT_ASCII_SENDER, None
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
        used, and None means "ask again with the store" (from a thread).
        An accepted address then meets the ip/sender block lists (pipeline.lists)."""
        got = self._route(client, env, mailbox, route, store_ok=store_ok)
        if got is None or got[1] is None or not self.settings().antispam.enabled:
            return got
        book = self.context.rules
        rules = book.cached()
        if rules is None:
            if not store_ok:
                return None
            rules = book.load()
        v = rcpt_verdict(book, rules, client, env, got[1])
        return got if v is None else (v, None)

    def _route(self, client: Client, env: Envelope, mailbox: str, route: tuple[str, ...],
               *, store_ok: bool) -> tuple[Verdict, Recipient | None] | None:
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
                 else self.recipients.domains.cached(addr.domain))
        if local is None:
            return None
        if local and self.srs is not None and is_srs(addr.local):
            back = self._srs_back(mailbox, addr, store_ok)
            if back is None or isinstance(back[0], Verdict):
                return back
            mailbox, addr, local = back
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

    def _srs_back(self, mailbox: str, addr: Address, store_ok: bool):
        """An SRS address of ours (a bounce of a forward): the verdict for it,
        or (mailbox, address, is-local) of the original sender to go on with."""
        assert self.srs is not None
        try:
            original = parse_address(self.srs.reverse(str(addr)))
        except (SrsForged, AddressError):
            return Verdict(550, "5.7.1", f"<{addr}> is not a valid return address of this "
                           "server: its SRS signature does not match or has expired"), None
        local = (self.recipients.is_local_domain(original.domain) if store_ok
                 else self.recipients.domains.cached(original.domain))
        if local is None:
            return None
        if not local:
            return ok(f"recipient <{addr}> ok (back to the original sender)", "2.1.5"), \
                Recipient(mailbox, addr, remote=[str(original)])
        return str(original), original, True

    def harvest(self, unknown: int, known_harvester: bool) -> tuple[float, Verdict | None]:
        """After the `unknown`-th refused recipient (550 5.1.1) of a session:
        the delay before its reply, or the 421 that ends the session (past
        limits.max_unknown_recipients). An address already counted for
        harvesting or failed logins gets one free answer (a typo), not two."""
        if unknown > self.settings().limits.max_unknown_recipients:
            return 0.0, HARVEST_END
        slow = unknown - (1 if known_harvester else HARVEST_FREE)
        if slow <= 0:
            return 0.0, None
        return min(HARVEST_DELAY * 2 ** (slow - 1), HARVEST_DELAY_MAX), None

    @staticmethod
    def unknown_recipient(v: Verdict) -> bool:
        return v.code == 550 and v.enhanced == "5.1.1"

    @staticmethod
    def _over_quota(exp: Expansion, declared: int) -> set[int]:
        return {u.id for u in exp.users
                if u.quota and u.used_bytes + max(declared, 1) > u.quota}

    # --------------------------------------------------------------- message
    async def check_message(self, client: Client, env: Envelope, content: bytes,
                            size: int, *, dry_run: bool = False) -> Decision:
        """The verdict on a whole message: limits first, then every check
        (dry_run: `coremail filter test`, which must change nothing)."""
        s = self.settings()
        limit = int(s.limits.max_message_size)
        if size > limit:
            return Decision(self.oversize(size, limit))
        header = header_section(content, int(s.limits.max_header_size))
        if header is None:
            return Decision(Verdict(552, "5.3.4", "the message header is larger than "
                                    f"{_size_words(int(s.limits.max_header_size))}; this "
                                    "server refuses it"))
        msg = Message(client, env, content, header, s, self.executor, dry_run=dry_run)
        return await decide(self.checks, msg, timeout=CHECK_TIMEOUT, log=self.log)

    def close(self) -> None:
        self.context.close()
        self.executor.shutdown(wait=False)
