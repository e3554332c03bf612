"""The list of message checks, in INTERFACE.md's order: this is where a new
check is plugged in, with one line in `default_checks`.

Each check reads the live settings from `msg.settings` when it runs (so a
`coremail config set` applies to the next message) and returns None when it
is switched off. `CheckContext` is what a check may need besides the
message: the store, the settings, the pipeline's threads, the log, the one
DNS resolver.
"""
from __future__ import annotations

from concurrent.futures import Executor
from typing import Callable

from ..config import Settings
from ..dns import Resolver
from ..obs.log import Log
from ..store.interfaces import Store
from .checks import HopCount, MessageCheck
from .senderauth import ForgedResults, SenderAuth


class CheckContext:
    def __init__(self, store: Store, settings: Callable[[], Settings], *,
                 executor: Executor | None = None, log: Log | None = None):
        self.store = store
        self.settings = settings
        self.executor = executor
        self.log = log
        self._resolver: Resolver | None = None
        self._resolver_key: tuple | None = None

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
    # 1. allow/block lists
    # 2. DNSBL
    # 3. SPF/DKIM/DMARC
    checks += [ForgedResults(), SenderAuth(ctx.resolver)]
    #
    # 4. rules
    # 5. the fingerprint counter
    # 6. the trainable score
    # (branch bayes: checks.append(...) here)
    #
    # 7. the virus scan
    # (branch av: checks.append(...) here)
    return checks
