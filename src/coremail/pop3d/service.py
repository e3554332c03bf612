"""The `pop3` service: listeners on listen.pop3 (plain, STLS) and
listen.pop3s (implicit TLS), the sessions of one worker process, and its
graceful stop. The supervisor runs several workers; each binds its own
SO_REUSEPORT sockets, so nothing here is shared between processes except the
store and the files under DIR/run (maildrop locks, failed-login counts), or
with a shared store (several nodes) the store alone (leases, failed logins).

Idle timeout: RFC 1939 says an autologout timer must be at least 10 minutes,
so POP3 uses the larger of limits.idle_timeout and 600 s (`min_idle_timeout`).
"""
from __future__ import annotations

import asyncio

from ..proto.access import AccessService
from ..services.login import Authenticator, LoginCache, throttle_for
from ..services.views import Views
from .maildrop import LeaseLock, MaildropLeases, MaildropLock, SizeCache
from .session import Pop3Session


class Pop3Service(AccessService):
    PLAIN, IMPLICIT = "pop3", "pop3s"
    min_idle_timeout = 600.0
    lock_wait = 3.0  # seconds a login waits for another session's maildrop lock

    def __init__(self, ctx):
        super().__init__(ctx)
        run = ctx.home / "run"
        self.lock_dir = run / "locks"
        self.auth = Authenticator(ctx.store, throttle_for(ctx.store, run),
                                  LoginCache(ttl=900.0, shared_dir=run / "logincache-pop3",
                                            key=ctx.login_key),
                                  queue=lambda: ctx.settings.limits.auth_queue)
        self.sizes = SizeCache()
        self.views = Views(ctx.store, ctx.log)
        self.leases = MaildropLeases(ctx.store) if ctx.store.shared else None
        self._renewing: asyncio.Task | None = None

    def maildrop_lock(self, user_id: int) -> MaildropLock | LeaseLock:
        if self.leases is not None:
            return self.leases.lock(user_id)
        return MaildropLock(self.lock_dir, user_id)

    async def start(self, sockets) -> None:
        await super().start(sockets)
        if self.leases is not None:
            self._renewing = asyncio.get_running_loop().create_task(self.leases.run())

    async def stop(self, timeout: float) -> None:
        await super().stop(timeout)
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.to_thread(self.leases.release_all)
        await self.views.stop()

    def max_line(self) -> int:
        return self.ctx.settings.limits.max_line_length

    def idle_timeout(self) -> float:
        return max(float(self.ctx.settings.limits.idle_timeout), self.min_idle_timeout)

    def make_session(self, listener: str, implicit_tls: bool) -> Pop3Session:
        # A session told to shut down answers "-ERR [SYS/TEMP] server shutting
        # down" and applies none of its DELEs.
        return Pop3Session(self, listener, implicit_tls)


def create(ctx) -> Pop3Service:
    return Pop3Service(ctx)
