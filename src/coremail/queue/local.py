"""Queued mail whose recipient is one of ours (a bounce to a local sender, a
local address reached through an alias or forward), and loop detection.

Local recipients are expanded here (ingest.recipients: aliases, auto-forward
with or without --keep) and stored through the ingest service, which gives
the copies their summary; remote targets go back to the queue as a new entry
carrying a Delivered-To header: that header, and the hop count, are how a
forwarding loop is caught and bounced instead of circling for ever.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ingest import Job, LocalCopy
from ..ingest.recipients import Recipients
from ..mail.address import AddressError, parse_address
from ..mail.headers import MAX_HOPS, delivered_to, header_section, hops
from ..mail.srs import Srs, SrsForged, is_srs
from ..smtpclient.session import Result
from ..store.interfaces import BlobRef, QueueEntry


@dataclass
class Trace:
    hops: int = 0
    delivered_to: set[str] = field(default_factory=set)


def trace_of(data: bytes) -> Trace:
    """Count the hops a message has made and the addresses it was delivered to."""
    header = header_section(data) or b""
    return Trace(hops(header), delivered_to(header))


def loop_result(trace: Trace, hostname: str) -> Result | None:
    if trace.hops > MAX_HOPS:
        return Result("failed", "5.4.6", f"mail forwarding loop: the message has passed "
                      f"{trace.hops} mail servers (at most {MAX_HOPS} allowed)", hostname)
    return None


@dataclass
class LocalPlan:
    results: dict[str, Result]          # addresses settled without storing anything
    forward: dict[str, list[str]]       # local address -> remote targets to queue
    job: Job                            # the copies to store
    owners: dict[int, str]              # id(LocalCopy) -> the address it is for


def plan_local(recipients: Recipients, entry: QueueEntry, addresses: list[str], data: bytes,
               trace: Trace, hostname: str, srs: Srs | None = None) -> LocalPlan:
    """Blocking (run it in a thread): where each local recipient leads."""
    results: dict[str, Result] = {}
    forward: dict[str, list[str]] = {}
    job = Job(qid=entry.id, sender=entry.sender, parts=[data],
              blob=BlobRef(entry.blob_id, entry.size or len(data)), report_failures=False)
    owners: dict[int, str] = {}
    for addr_text in addresses:
        try:
            addr = parse_address(addr_text)
        except AddressError as e:
            results[addr_text] = Result("failed", "5.1.3", f"bad address: {e}", hostname)
            continue
        if addr.key in trace.delivered_to:
            results[addr_text] = Result(
                "failed", "5.4.6", f"mail forwarding loop for {addr.key}: the message "
                "was already delivered to this address once", hostname)
            continue
        if srs is not None and is_srs(addr.local):
            # A bounce (or reply) to the SRS sender of one of our forwards.
            try:
                addr = parse_address(srs.reverse(str(addr)))
            except (SrsForged, AddressError):
                results[addr_text] = Result("failed", "5.7.1", f"550 5.7.1 <{addr.key}>: not "
                                            "a valid SRS address of this server", hostname)
                continue
            if not recipients.is_local_domain(addr.domain):
                forward[addr_text] = [str(addr)]
                results[addr_text] = Result("sent", "2.0.0", "250 2.0.0 sent on to the "
                                            f"original sender <{addr}>", hostname)
                continue
        exp = recipients.expand(addr)
        if not exp.users and not exp.remote:
            if exp.loop:
                results[addr_text] = Result("failed", "5.4.6", "mail forwarding loop: "
                                            f"the aliases or forwards of {addr.key} lead "
                                            "back to it", hostname)
            else:
                results[addr_text] = Result("failed", "5.1.1", f"550 5.1.1 <{addr.key}>: "
                                            "no such user here", hostname)
            continue
        for user in exp.users:
            copy = LocalCopy(user)
            job.local.append(copy)
            owners[id(copy)] = addr_text
        if exp.remote:
            forward[addr_text] = exp.remote
        results[addr_text] = Result("sent", "2.0.0", "250 2.0.0 delivered locally"
                                    + (" and forwarded" if exp.remote else ""), hostname)
    return LocalPlan(results, forward, job, owners)


def settle(plan: LocalPlan, hostname: str) -> None:
    """After the ingest committed plan.job: a refused copy turns its address
    into a failure (permanent, e.g. over quota) or a retry (temporary)."""
    job = plan.job
    refused = list(job.failed)
    if job.error is not None:
        refused = [(c, job.error) for c in job.local]
    for copy, err in refused:
        addr_text = plan.owners[id(copy)]
        state = "failed" if err.code >= 500 else "deferred"
        plan.results[addr_text] = Result(state, err.enhanced,
                                         f"{err.code} {err.enhanced} {err.text}", hostname)
        if state == "deferred":
            plan.forward.pop(addr_text, None)


def with_delivered_to(address: str) -> bytes:
    return b"Delivered-To: " + address.encode("utf-8") + b"\r\n"
