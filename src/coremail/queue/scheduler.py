"""The deliveragent's scheduler: claims due queue entries under a lease,
runs many attempts at once within the concurrency limits, and keeps its
leases alive.

Crash safety in three parts: a lease (owner "host:pid:token") so no two
agents ever hold one entry; the sent-journal (queue/journal.py) noting each
remote 250 the instant it arrives; and ids fixed per attempt for the bounces
and forwards an attempt creates. A restarted agent replays the journals of
dead agents and frees their leases before it claims anything.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from pathlib import Path

from ..smtpclient.pool import ConnectionCache
from .. import dns
from ..smtpclient.routing import Router
from ..store.interfaces import QueueEntry
from ..ingest.recipients import Recipients
from ..mail.dkimsign import DkimSigner
from ..mail.srs import Srs
from . import attempt
from .attempt import Attempts
from .commit import DoneBatcher
from .limits import Limiter
from .journal import Journal, replay

LEASE = 120.0          # seconds a claim holds without renewal
RENEW_EVERY = 30.0
POLL = 1.0             # how often the store is asked for due mail (and flushes)
CLAIM_BATCH = 200


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DeliverAgent:
    def __init__(self, ctx):
        self.ctx = ctx
        self.store = ctx.store
        self.log = ctx.log
        self.host = socket.gethostname()[:40]
        self.token = secrets.token_hex(4)
        self.owner = f"{self.host}:{os.getpid()}:{self.token}"
        self.journal_dir = Path(ctx.home) / "data" / "queue-journal"
        self.journal: Journal | None = None
        self.limiter = Limiter()
        self.connections = ConnectionCache()
        self.finished = DoneBatcher(self)
        self.recipients = Recipients(ctx.store)
        self.attempts: Attempts | None = None
        self._resolver: Router | None = None
        self._resolver_key: tuple = ()
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task] = set()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        # Several agent processes share the queue (leases keep them apart);
        # each takes its share of the concurrency limits.
        self.workers = max(1, ctx.settings.workers.deliveragent)

    def share(self, limit: int) -> int:
        """This process's part of a limit that holds for all agents together."""
        return max(1, -(-limit // self.workers))

    # -- what attempts use ---------------------------------------------------
    def resolver(self) -> Router:
        """One router (and DNS cache) while delivery.nameservers stays the same."""
        d = self.ctx.settings.delivery
        key = (tuple(d.nameservers), float(d.connect_timeout))
        if self._resolver is None or key != self._resolver_key:
            self._resolver = Router(dns.Resolver.from_settings(self.ctx.settings))
            self._resolver_key = key
        return self._resolver

    def wake(self) -> None:
        """Look at the queue now (new mail, a bounce, a flush)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called from a worker thread
            self._loop.call_soon_threadsafe(self._wake.set)
        else:
            if loop is self._loop:
                self._wake.set()
            else:
                self._loop.call_soon_threadsafe(self._wake.set)

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._recover)
        self.journal = Journal(self.journal_dir, os.getpid(), self.token)
        ctx = self.ctx
        self.attempts = Attempts(
            store=self.store, settings=lambda: ctx.settings, log=self.log, ingest=ctx.ingest,
            recipients=self.recipients, journal=self.journal, finished=self.finished,
            limiter=self.limiter, connections=self.connections, resolver=self.resolver,
            share=self.share, wake=self.wake, signer=DkimSigner(ctx.home),
            srs=Srs(ctx.home), tracer=ctx.tracer)
        self.finished.start()
        self._tasks = [asyncio.create_task(self._run(), name="queue-scheduler"),
                       asyncio.create_task(self._renew(), name="queue-leases")]
        self.log.info("deliveragent.started", owner=self.owner)

    def _recover(self) -> None:
        marked = replay(self.journal_dir, self.store, pid_alive)
        freed = 0
        for owner in self.store.queue_lease_owners():
            host, _, rest = owner.partition(":")
            pid_text, _, token = rest.partition(":")
            if host != self.host or not pid_text.isdigit():
                continue  # another machine's agent: its lease runs out by itself
            pid = int(pid_text)
            if pid == os.getpid() or not pid_alive(pid):
                freed += self.store.queue_release(owner)
        if marked or freed:
            self.log.info("deliveragent.recovered", journal_marked=marked, leases_freed=freed)

    async def stop(self, timeout: float) -> None:
        self._stopping = True
        self.limiter.stop()
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        if self._inflight:
            _, late = await asyncio.wait(self._inflight, timeout=timeout)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
        await self.finished.stop()
        await self.connections.close_all()
        await self.ctx.close_ingest()
        await asyncio.to_thread(self.store.queue_release, self.owner)
        if self.journal is not None:
            self.journal.close()
        self.log.info("deliveragent.stopped")

    # -- the loops ---------------------------------------------------------------
    def _capacity(self) -> int:
        # Claimed entries beyond the connection limit wait in the Limiter; a
        # margin keeps the connections busy without hoarding the queue.
        return self.share(self.ctx.settings.delivery.concurrency) * 2 - len(self._inflight)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            room = self._capacity()
            entries: list[QueueEntry] = []
            if room > 0:
                now = time.time()
                try:
                    entries = await asyncio.to_thread(self.store.queue_claim, self.owner, now,
                                                      now + LEASE, min(room, CLAIM_BATCH))
                except Exception as e:  # noqa: BLE001 - a busy database must not stop delivery
                    self.log.error("queue.claim_failed", error=repr(e))
            for e in entries:
                task = asyncio.create_task(self._attempt(e))
                self._inflight.add(task)
            if entries and len(entries) == min(room, CLAIM_BATCH):
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), POLL)
            except asyncio.TimeoutError:
                pass

    async def _attempt(self, entry: QueueEntry) -> None:
        try:
            assert self.attempts is not None
            await attempt.run(self.attempts, entry)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - one bad entry must not stop the others
            self.log.error("queue.attempt_crashed", qid=entry.id, error=repr(e))
            try:
                await asyncio.to_thread(
                    self.store.queue_update, entry.id, recipients=[],
                    next_attempt=time.time() + 300,
                    last_error=f"4.3.0 internal error while delivering: {e!r}")
            except Exception:  # noqa: BLE001
                pass
        finally:
            self._inflight.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._wake.set()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                await asyncio.to_thread(self.store.queue_renew, self.owner, time.time() + LEASE)
            except Exception as e:  # noqa: BLE001
                self.log.error("queue.renew_failed", error=repr(e))
