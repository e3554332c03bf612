"""The list of message checks, in INTERFACE.md's order: this is where a new
check is plugged in, with one line in `default_checks`.

Each check reads the live settings from `msg.settings` when it runs (so a
`coremail config set` applies to the next message) and returns None when it
is switched off. `CheckContext` is what a check may need besides the
message: the store, the settings, the pipeline's threads, the log, the one
DNS resolver.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Callable

from ..config import Settings
from ..dns import Resolver
from ..ingest.recipients import Recipients
from ..obs.log import Log
from ..store.interfaces import Store
from .antivirus import AttachmentScan, ClamdScan
from .builtin import BuiltinRules
from .bayes.check import BayesCheck
from .checks import HopCount, LaterFlush, MessageCheck
from .dnsbl import DnsblCheck
from .fingerprint import FingerprintCheck
from .lists import ListCheck
from .rulebook import RuleBook
from .senderauth import ForgedResults, SenderAuth


RULE_HITS_AFTER = 2.0


class CheckContext:
    def __init__(self, store: Store, settings: Callable[[], Settings], *,
                 executor: Executor | None = None, log: Log | None = None,
                 recipients: Recipients | None = None):
        self.store = store
        self.settings = settings
        self.executor = executor
        self.log = log
        self.recipients = recipients or Recipients(store)
        self.rules = RuleBook(store)      # `coremail filter` rules, shared with RCPT
        # their hits (at RCPT and at the end of DATA) written in a batch, RULE_HITS_AFTER
        # seconds after the first one
        self.rule_hits = LaterFlush(self.rules.flush, RULE_HITS_AFTER, executor)
        self._resolver: Resolver | None = None
        self._resolver_key: tuple | None = None
        self._closers: list[Callable[[], None]] = [self.rules.flush]

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run fn (blocking: write what is counted) when the pipeline closes."""
        self._closers.append(fn)

    def close(self) -> None:
        for fn in self._closers:
            try:
                fn()
            except Exception:   # a closed store: the counts of the last moments are lost, no mail
                pass

    async def is_local_domain(self, domain: str) -> bool:
        known = self.recipients.domains.cached(domain)
        if known is None:
            known = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.recipients.is_local_domain, domain)
        return known

    def resolver(self) -> Resolver:
        """dns.Resolver over `delivery.nameservers`, rebuilt when they change."""
        s = self.settings()
        key = (tuple(s.delivery.nameservers), float(s.delivery.connect_timeout))
        if self._resolver is None or key != self._resolver_key:
            self._resolver, self._resolver_key = Resolver.from_settings(s), key
        return self._resolver


def default_checks(ctx: CheckContext) -> list[MessageCheck]:
    """Every check a message passes, in order. Add yours with one line here
    (give it `name` and `kind`: "spam" is skipped for allow-listed mail)."""
    checks: list[MessageCheck] = [HopCount()]
    checks.append(ListCheck(ctx.rules, ctx.rule_hits))        # 1. allow/block lists, rules
    checks.append(DnsblCheck(ctx))                           # 2. DNSBL
    checks += [ForgedResults(), SenderAuth(ctx.resolver)]    # 3. SPF/DKIM/DMARC (kind "auth")
    checks.append(BuiltinRules(ctx))                         # 4. built-in rules
    fingerprint = FingerprintCheck(ctx.store, ctx.executor)  # 5. the fingerprint counter
    ctx.on_close(fingerprint.close)
    checks.append(fingerprint)
    bayes = BayesCheck(ctx.store, ctx.executor)              # 6. the trainable score
    ctx.on_close(bayes.close)
    checks.append(bayes)
    clamd = ClamdScan()                                      # 7. the virus scan (kind "virus"):
    ctx.on_close(clamd.close)                                #    clamd and the built-in
    checks += [clamd, AttachmentScan()]                      #    attachment checks
    return checks
