"""Durable before 250: trace headers, the blob, and the group commit.

Messages accepted at about the same time are committed together: their blobs
are written, fsync'ed in one `BlobStore.sync`, and all their mailbox rows go
into one `Store.deliver` transaction; remote recipients go to the outbound
queue. Only then does each waiting session get its 250 with the queue id. A
batch forms naturally while the previous one is on disk, so one message alone
waits for nothing and twenty share an fsync.
"""
from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any, Callable

from ..mail.mime import summarize  # never raises: broken MIME degrades to text/plain
from ..obs.log import Log
from ..pipeline.verdict import STORAGE_FULL, TEMP_FAILURE, Verdict
from ..store.interfaces import (BlobRef, Delivered, Delivery, QuotaExceeded, StorageFull, Store,
                                StoreError, User)

MAX_BATCH = 256


_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$")
_ADDR_LITERAL = re.compile(r"^\[(?:[0-9.]+|IPv6:[0-9A-Fa-f:.]+)\]$")


def _literal(ip: str) -> str:
    """RFC 5321 4.1.3 address literal: [192.0.2.1] or [IPv6:2001:db8::1]."""
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def _from_domain(helo: str) -> str:
    """The EHLO name if it is a domain or an address literal (RFC 5321 4.4
    From-domain); anything else (spaces, ';', '(' ...) would break the
    header's grammar, so it becomes "unknown" with the name as a comment."""
    if len(helo) <= 255 and (_DOMAIN.match(helo) or _ADDR_LITERAL.match(helo)):
        return helo
    safe = "".join(c for c in helo[:64] if c.isascii() and (c.isalnum() or c in "-._:[]"))
    return f"unknown (helo={safe})" if safe else "unknown"


def trace_headers(*, qid: str, sender: str, helo: str, ip: str, hostname: str, tls: bool,
                  auth: bool, esmtp: bool, smtputf8: bool, recipients: list[str]) -> bytes:
    """Return-Path and Received (RFC 5321 4.4, protocol names of RFC 3848)."""
    proto = ("UTF8SMTP" if smtputf8 else "ESMTP" if esmtp else "SMTP")
    if esmtp:
        proto += ("S" if tls else "") + ("A" if auth else "")
    rcpt = f"\r\n\tfor <{recipients[0]}>" if len(recipients) == 1 else ""
    return (f"Return-Path: <{sender}>\r\n"
            f"Received: from {_from_domain(helo)} ({_literal(ip)})\r\n"
            f"\tby {hostname} (coremail) with {proto} "
            f"id {qid}{rcpt};\r\n\t{_now_rfc5322()}\r\n").encode("utf-8")


_date_cache: tuple[int, str] = (0, "")


def _now_rfc5322() -> str:
    """The date for Received headers; formatted once a second, not per message."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, localtime=True))
    return _date_cache[1]


@dataclass
class Job:
    qid: str
    head: bytes
    content: bytes
    sender: str
    users: list[User]
    remote: list[str]
    arrived: float = field(default_factory=time.time)
    ref: BlobRef | None = None
    verdict: Verdict | None = None
    failed_users: list[tuple[User, StoreError]] = field(default_factory=list)


def _verdict(e: StoreError) -> Verdict:
    return Verdict(e.code, e.enhanced, e.text)


def _db_error(e: Exception) -> Verdict:
    text = str(e).lower()
    if "full" in text or "no space" in text:
        return STORAGE_FULL
    return TEMP_FAILURE


class Committer:
    """Collects jobs from many sessions and commits them in batches on worker
    threads, so the event loop never waits on a disk; two batches overlap
    (one fsyncs its blobs while the other is in its database commit)."""

    PIPELINE = 2   # batches in flight: one syncs its blobs while the other commits

    def __init__(self, store: Store, log: Log, hostname: Callable[[], str],
                 on_partial: Callable[[Job], None] | None = None):
        self.store = store
        self.blobs: Any = getattr(store, "blobs")
        self.log = log
        self.hostname = hostname
        self.on_partial = on_partial
        self._pool = ThreadPoolExecutor(max_workers=self.PIPELINE, thread_name_prefix="commit")
        self._pending: list[tuple[Job, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()
        self._kick_scheduled = False

    async def submit(self, job: Job) -> Verdict:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((job, fut))
        if not self._kick_scheduled:
            self._kick_scheduled = True
            loop.call_soon(self._kick)  # sessions finishing in this same tick join the batch
        return await fut

    def _kick(self) -> None:
        self._kick_scheduled = False
        while self._pending and len(self._tasks) < self.PIPELINE:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._pending:
            self._kick()

    async def _run(self, batch: list[tuple[Job, asyncio.Future]]) -> None:
        jobs = [j for j, _ in batch]
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self.commit, jobs)
        except Exception as e:   # commit() catches its own; this is the last guard
            self.log.error("smtp.commit_failed", error=repr(e))
            for j in jobs:
                j.verdict = j.verdict or TEMP_FAILURE
        for j, fut in batch:
            if not fut.done():
                fut.set_result(j.verdict or TEMP_FAILURE)

    async def close(self) -> None:
        while self._tasks or self._pending:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                self._kick()
                await asyncio.sleep(0)
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------ on the thread
    def commit(self, jobs: list[Job]) -> None:
        live: list[Job] = []
        for j in jobs:
            try:
                j.ref = self.blobs.write([j.head, j.content], blob_id=j.qid, sync=False)
                live.append(j)
            except StoreError as e:
                j.verdict = _verdict(e)
        try:
            self.blobs.sync([j.ref for j in live])
        except StoreError as e:
            self._fail(live, _verdict(e))
            return
        deliveries: list[tuple[Job, User, Delivery]] = []
        for j in live:
            if j.users:
                meta = summarize(j.head + j.content)
                for u in j.users:
                    deliveries.append((j, u, Delivery(u.id, j.ref, meta=meta,
                                                      internaldate=j.arrived)))
        try:
            results = self.store.deliver([d for _, _, d in deliveries]) if deliveries else []
        except StoreError as e:  # e.g. StorageFull: the database could not grow
            self.log.warning("smtp.deliver_refused", error=e.text, batch=len(live),
                             cause=repr(e.__cause__) if e.__cause__ is not None else "")
            self._fail(live, _verdict(e))
            return
        except Exception as e:  # the database said no (locked too long, disk full)
            self.log.error("smtp.deliver_failed", error=repr(e), batch=len(live))
            self._fail(live, _db_error(e))
            return
        ok: dict[str, int] = {}
        for (j, u, _), r in zip(deliveries, results):
            if isinstance(r, Delivered):
                ok[j.qid] = ok.get(j.qid, 0) + 1
            else:
                j.failed_users.append((u, r))
        for j in live:
            if j.remote:
                try:
                    self.store.enqueue(queue_id=j.qid, blob=j.ref, sender=j.sender,
                                       recipients=j.remote)
                except Exception as e:
                    self.log.error("smtp.enqueue_failed", qid=j.qid, error=repr(e))
                    if not ok.get(j.qid):
                        self._fail([j], _verdict(e) if isinstance(e, StoreError)
                                   else _db_error(e))
                        continue
                    # Local copies are in; the client will retry and the
                    # locals get a duplicate rather than the remote a loss.
                    j.verdict = _verdict(e) if isinstance(e, StoreError) else _db_error(e)
                    continue
            if not ok.get(j.qid) and not j.remote:
                err = j.failed_users[0][1] if j.failed_users else StorageFull("nothing stored")
                j.verdict = (Verdict(552, "5.2.2", "the recipient's mailbox is full; they must "
                                     "delete messages before receiving more")
                             if isinstance(err, QuotaExceeded) else _verdict(err))
                self.blobs.delete([j.qid])
                continue
            j.verdict = Verdict(250, "2.0.0", f"Ok: queued as {j.qid}")
            if j.failed_users and self.on_partial is not None:
                try:
                    self.on_partial(j)
                except Exception as e:
                    self.log.error("smtp.bounce_failed", qid=j.qid, error=repr(e))

    def _fail(self, jobs: list[Job], v: Verdict) -> None:
        for j in jobs:
            j.verdict = v
        try:
            self.blobs.delete([j.qid for j in jobs if j.ref is not None])
        except OSError:
            pass


def bounce_partial(store: Store, hostname: str, postmaster: str, job: Job) -> None:
    """Some local recipients of an accepted message could not take it (a full
    mailbox at commit time): tell the sender with a DSN through the queue."""
    from ..mail import dsn
    from ..store.blobs import new_id
    if not dsn.should_bounce(job.sender):
        return
    failures = [dsn.RecipientFailure(recipient=u.address, status="5.2.2", action="failed",
                                     diagnostic=f"{e.code} {e.enhanced} {e.text}")
                for u, e in job.failed_users]
    raw = dsn.build_dsn(reporting_mta=hostname, original_sender=job.sender,
                        original_headers=job.head + job.content[:65536],
                        original_envelope_id=None,
                        arrival_date=datetime.fromtimestamp(job.arrived, timezone.utc),
                        failures=failures, postmaster=postmaster)
    blobs: Any = getattr(store, "blobs")
    qid = new_id()
    ref = blobs.write(raw, blob_id=qid, sync=True)
    store.enqueue(queue_id=qid, blob=ref, sender="", recipients=[job.sender], kind="bounce")
