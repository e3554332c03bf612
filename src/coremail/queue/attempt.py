"""One delivery attempt of one queue entry: read the message, catch loops,
store local recipients, send remote ones (a connection per destination host
with all its recipients), then write the outcome back in one step: sent
recipients done, failed ones bounced, the rest retried later.
"""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from ..config import Settings
from ..ingest import Ingest, Job, new_qid
from ..ingest.recipients import Recipients
from ..mail.dkimsign import DkimSigner
from ..mail.srs import Srs
from ..obs.log import Log
from ..obs.trace import NullTracer, Tracer
from ..smtpclient import session
from ..smtpclient.pool import ConnectionCache
from ..smtpclient.routing import RouteError, Router, Target
from ..smtpclient.session import HostFailed, Result
from ..store.interfaces import BlobMissing, QueueEntry, QueueRecipient, Store
from .bounce import derived_id, queue_bounce
from .commit import DoneBatcher
from .journal import Journal
from .limits import Limiter, SlotRefused
from .local import loop_result, plan_local, settle, trace_of, with_delivered_to
from .tracing import QueueTrace


@dataclass
class Attempts:
    """What an attempt needs from its deliveragent, and nothing more."""

    store: Store
    settings: Callable[[], Settings]
    log: Log
    ingest: Ingest
    recipients: Recipients             # alias/forward expansion, the local-domain cache
    journal: Journal                   # every remote 250, the instant it arrives
    finished: DoneBatcher              # group commit of finished entries
    limiter: Limiter                   # connection slots
    connections: ConnectionCache       # reused outbound connections
    resolver: Callable[[], Router]
    share: Callable[[int], int]        # this process's part of a limit
    wake: Callable[[], None]           # look at the queue again (new entries)
    signer: DkimSigner | None = None   # DKIM keys of the local domains
    srs: Srs | None = None             # envelope senders of forwards (authentication.srs)
    tracer: Tracer = field(default_factory=NullTracer)   # the message trace

    @property
    def trace(self) -> QueueTrace:
        return QueueTrace(self.tracer)


# What a recipient gets whose attempt never started because the agent was
# stopping: it is retried at once by the next agent, not after a delay.
NOT_TRIED = Result("deferred", "4.3.2", "not tried yet: the deliveragent was stopping")


def retry_delay(intervals: list[float], attempts_done: int) -> float:
    """delivery.retry_intervals in turn, then the last one for ever."""
    return float(intervals[min(attempts_done, len(intervals) - 1)])


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


async def run(agent: Attempts, entry: QueueEntry) -> None:
    store, settings = agent.store, agent.settings()
    hostname = settings.server.hostname
    pending = [r.address for r in entry.recipients if r.status == "pending"]
    if not pending:  # every recipient was settled (e.g. by a replayed journal)
        await agent.finished.done(entry.id, entry.created)
        return
    # One hop to a thread for both blocking reads: the message and which of
    # its domains are ours.
    try:
        data, local_domains = await asyncio.to_thread(_prepare, agent, entry, pending)
    except BlobMissing:
        agent.log.error("queue.blob_missing", qid=entry.id, blob=entry.blob_id)
        await asyncio.to_thread(store.queue_delete, entry.id)
        return
    trace = trace_of(data)
    results: dict[str, Result] = {}
    forwards: dict[str, list[str]] = {}
    looped = loop_result(trace, hostname)
    if looped is not None:
        results = {a: looped for a in pending}
    else:
        local = [a for a in pending if _domain(a) in local_domains]
        groups: dict[str, list[str]] = defaultdict(list)
        for a in pending:
            if _domain(a) not in local_domains:
                groups["" if settings.delivery.relayhost else _domain(a)].append(a)
        sender = _envelope_sender(agent, entry, local_domains) if groups else entry.sender
        outbound = (await _signed(agent, entry, without_return_path(data), sender) if groups
                    else data)
        jobs = [_send_group(agent, entry, key, addrs, outbound, sender)
                for key, addrs in groups.items()]
        if local:
            jobs.append(_local(agent, entry, local, data, trace))
        for got in await asyncio.gather(*jobs):
            results.update(got[0])
            forwards.update(got[1])
        if all(r is NOT_TRIED for r in results.values()):
            return  # nothing happened; stop() gives the lease back
    # The common case (everything sent, nothing to forward) needs no thread:
    # the entry joins the next group commit.
    if forwards or any(r.state != "sent" for r in results.values()):
        if not await asyncio.to_thread(_finish, agent, entry, results, forwards, data):
            agent.journal.committed(entry.id)
            return
    await agent.finished.done(entry.id, entry.created)


def without_return_path(data: bytes) -> bytes:
    """The message as it leaves: the Return-Path our SMTP service put on top is
    for final delivery only (RFC 5321 4.4), so a relayed copy goes without it."""
    if data[:12].lower() == b"return-path:":
        end = data.find(b"\r\n", 12)
        while end != -1 and data[end + 2:end + 3] in (b" ", b"\t"):  # folded
            end = data.find(b"\r\n", end + 2)
        if end != -1:
            return data[end + 2:]
    return data


async def _signed(agent: Attempts, entry: QueueEntry, data: bytes, sender: str) -> bytes:
    """The copy that goes out, DKIM-signed when it is from a local domain
    (authentication.dkim_sign). A broken key costs the signature, never the mail."""
    if agent.signer is None or not agent.settings().authentication.dkim_sign:
        return data
    try:
        return await asyncio.to_thread(agent.signer.sign, data, sender,
                                       agent.recipients.is_local_domain)
    except Exception as e:  # noqa: BLE001 - any key or library fault: send unsigned
        agent.log.error("queue.dkim_failed", qid=entry.id, error=f"{type(e).__name__}: {e}")
        return data


def _envelope_sender(agent: Attempts, entry: QueueEntry, local_domains: set[str]) -> str:
    """MAIL FROM for the remote copies. A sender of another domain means a
    forward (nothing else relays it): SRS-rewritten under the primary domain,
    so SPF passes at the destination and a bounce finds its way back."""
    s = agent.settings()
    sender = entry.sender
    if (not sender or agent.srs is None or not s.authentication.srs
            or _domain(sender) in local_domains):
        return sender
    try:
        return agent.srs.forward(sender, s.server.domain)
    except Exception as e:  # noqa: BLE001 - an unusable sender or secret: send it unchanged
        agent.log.error("queue.srs_failed", qid=entry.id, sender=sender, error=str(e))
        return sender


def _prepare(agent: Attempts, entry: QueueEntry, pending: list[str]) -> tuple[bytes, set]:
    data = agent.store.blobs.read(entry.blob_id)
    domains = {_domain(a) for a in pending}
    if entry.sender:
        domains.add(_domain(entry.sender))
    return data, {d for d in domains if agent.recipients.is_local_domain(d)}


async def _local(agent: Attempts, entry: QueueEntry, local: list[str], data: bytes, trace):
    t0 = time.monotonic()
    hostname = agent.settings().server.hostname
    out = await asyncio.to_thread(plan_local, agent.recipients, entry, local, data, trace,
                                  hostname, agent.srs)
    if out.job.local:
        await agent.ingest.submit(out.job)
        settle(out, hostname)
    agent.trace.local(entry, out.job.stored, out.results)
    for addr, r in out.results.items():
        agent.log.info("delivery", qid=entry.id, rcpt=addr, host="local", ip="",
                       reply=r.diagnostic, result=r.state, delay=_delay(entry),
                       took=f"{time.monotonic() - t0:.3f}",
                       forward=",".join(out.forward.get(addr, [])) or None)
    return out.results, out.forward


async def _send_group(agent: Attempts, entry: QueueEntry, key: str, addrs: list[str],
                      data: bytes, sender: str) -> tuple[dict[str, Result], dict]:
    d = agent.settings().delivery
    domain = _domain(addrs[0])
    try:
        route = await agent.resolver().route(domain, relayhost=d.relayhost, port=d.smtp_port)
    except RouteError as e:
        r = Result("failed" if e.permanent else "deferred", e.status, e.text)
        agent.log.info("delivery", qid=entry.id, rcpt=",".join(addrs), host="", ip="",
                       reply=r.text, result=r.state, delay=_delay(entry))
        agent.trace.attempt(entry, addrs, "", "", r.text, r.state)
        return {a: r for a in addrs}, {}
    limit_key = key or f"relay:{d.relayhost}"
    try:
        return await _send_in_slot(agent, entry, limit_key, route, addrs, data, sender)
    except SlotRefused:
        return {a: NOT_TRIED for a in addrs}, {}


async def _send_in_slot(agent: Attempts, entry: QueueEntry, limit_key: str, route,
                        addrs: list[str], data: bytes, sender: str
                        ) -> tuple[dict[str, Result], dict]:
    d = agent.settings().delivery
    async with agent.limiter.slot(limit_key, lambda: agent.share(d.concurrency),
                                  lambda: agent.share(d.per_domain_concurrency)):
        last: HostFailed | None = None
        last_target: Target | None = None
        for target in route.targets():
            t0 = time.monotonic()

            def note(accepted: list[str], r: Result) -> None:
                agent.journal.sent(entry.id, accepted, r.text)

            try:
                got = await session.send(
                    target, helo=agent.settings().server.hostname, sender=sender,
                    recipients=addrs, data=data, connect_timeout=float(d.connect_timeout),
                    command_timeout=float(d.command_timeout), on_accepted=note,
                    cache=agent.connections)
            except HostFailed as e:
                last, last_target = e, target
                agent.log.info("delivery", qid=entry.id, rcpt=",".join(addrs),
                               host=target.hostname, ip=target.address, reply=e.text,
                               result="deferred", delay=_delay(entry),
                               took=f"{time.monotonic() - t0:.3f}")
                agent.trace.attempt(entry, addrs, target.hostname, target.address, e.text,
                                    "deferred")
                continue
            by_reply: dict[tuple[str, str, bool | None], list[str]] = defaultdict(list)
            for a, r in got.items():
                by_reply[(r.state, r.diagnostic, r.tls)].append(a)
            for (state, reply, tls), rcpts in by_reply.items():
                agent.log.info("delivery", qid=entry.id, rcpt=",".join(rcpts),
                               host=target.hostname, ip=target.address, reply=reply,
                               result=state, tls="yes" if tls else "no", delay=_delay(entry),
                               took=f"{time.monotonic() - t0:.3f}")
                agent.trace.attempt(entry, rcpts, target.hostname, target.address, reply, state,
                                    tls=tls)
            return got, {}
    assert last is not None and last_target is not None
    r = Result("deferred", last.status, last.text, last_target.hostname, last_target.address)
    return {a: r for a in addrs}, {}


def _delay(entry: QueueEntry) -> str:
    return f"{time.time() - entry.created:.1f}"


def _finish(agent: Attempts, entry: QueueEntry, results: dict[str, Result],
            forwards: dict[str, list[str]], data: bytes) -> bool:
    """Blocking: record the outcome; True when the entry is finished and
    goes to the group commit (scheduler's DoneBatcher). Order matters for crash safety: the
    messages this attempt creates (forwards, the bounce) are queued under ids
    fixed by the attempt before the entry itself changes, so a rerun after a
    crash finds them and makes no second copy."""
    store, settings = agent.store, agent.settings()
    now = time.time()
    for i, (addr, targets) in enumerate(sorted(forwards.items())):
        qid = derived_id(entry, f"F{i}")
        if store.queue_get(qid) is None:
            job = Job(qid=qid, blob_id=new_qid(), sender=entry.sender,
                      parts=[with_delivered_to(addr), data], remote=list(targets))
            agent.ingest.commit_now([job])
            if job.error is not None:
                raise job.error
            agent.log.info("queue.forwarded", qid=entry.id, rcpt=addr, new_qid=qid,
                           to=",".join(targets))
            agent.trace.forwarded(entry, addr, list(targets), qid)
    expired = now - entry.created >= float(settings.delivery.max_queue_time)
    for addr, r in list(results.items()):
        if r.state == "deferred" and expired:
            status = r.status if r.status.startswith("4.4") else "4.4.7"
            results[addr] = Result("failed", status, r.diagnostic + " (gave up: the message "
                                   f"was queued for {settings.delivery.max_queue_time})",
                                   r.host, r.ip)
    failed = {a: r for a, r in results.items() if r.state == "failed"}
    if failed:
        bid = queue_bounce(agent.ingest, entry, failed, data, hostname=settings.server.hostname,
                           postmaster=f"postmaster@{settings.server.domain}", now=now)
        agent.log.info("queue.bounced" if bid else "queue.failed_no_bounce", qid=entry.id,
                       rcpt=",".join(failed), bounce_qid=bid)
        agent.trace.bounced(entry, list(failed), bid)
        agent.wake()
    if forwards:
        agent.wake()
    deferred = {a: r for a, r in results.items() if r.state == "deferred"}
    if not deferred:
        return True
    recips = [QueueRecipient(a, "pending" if r.state == "deferred" else r.state, r.text,
                             _attempts(entry, a) + 1) for a, r in results.items()]
    delay = retry_delay(list(settings.delivery.retry_intervals), entry.attempts)
    if all(r is NOT_TRIED for r in deferred.values()):
        delay = 0.0
    first = next(iter(deferred.values()))
    store.queue_update(entry.id, recipients=recips, next_attempt=now + delay,
                       last_error=first.text)
    agent.log.info("queue.deferred", qid=entry.id, rcpt=",".join(deferred),
                   retry_in=f"{delay:.0f}", reason=first.text)
    agent.trace.deferred(entry, list(deferred), delay, first.text)
    return False


def _attempts(entry: QueueEntry, address: str) -> int:
    for r in entry.recipients:
        if r.address == address:
            return r.attempts
    return 0
