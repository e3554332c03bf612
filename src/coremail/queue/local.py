"""Queued mail whose recipient is one of ours (a bounce to a local sender, a
local address reached through an alias or forward), and loop detection.

Local recipients are expanded here with services.recipients (aliases,
auto-forward with or without --keep), stored with Store.deliver, and remote
targets go back to the queue as a new entry carrying a Delivered-To header:
that header, and the hop count, are how a forwarding loop is caught and
bounced instead of circling for ever.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..mail.address import AddressError, parse_address
from ..services.recipients import Recipients
from ..smtpclient.session import Result
from ..store.interfaces import BlobRef, Delivery, QueueEntry, Store, StoreError

MAX_HOPS = 30  # Received + Delivered-To lines; RFC 5321 6.3 suggests at least 100 is too many

_TRACE = re.compile(rb"^(received|delivered-to)[ \t]*:[ \t]*(.*)$", re.IGNORECASE)


def header_section(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return data if end < 0 else data[:end]


@dataclass
class Trace:
    hops: int = 0
    delivered_to: set[str] = field(default_factory=set)


def trace_of(data: bytes) -> Trace:
    """Count the hops a message has made and the addresses it was delivered to."""
    out = Trace()
    for line in header_section(data).splitlines():
        m = _TRACE.match(line)
        if not m:
            continue
        out.hops += 1
        if m.group(1).lower() == b"delivered-to":
            out.delivered_to.add(m.group(2).decode("utf-8", "replace").strip()
                                 .strip("<>").lower())
    return out


def loop_result(trace: Trace, hostname: str) -> Result | None:
    if trace.hops > MAX_HOPS:
        return Result("failed", "5.4.6", f"mail forwarding loop: the message has passed "
                      f"{trace.hops} mail servers (at most {MAX_HOPS} allowed)", hostname)
    return None


@dataclass
class LocalOutcome:
    results: dict[str, Result]
    forward: dict[str, list[str]]  # local address -> remote targets to queue


def deliver_local(store: Store, entry: QueueEntry, addresses: list[str], data: bytes,
                  trace: Trace, hostname: str) -> LocalOutcome:
    """Blocking (run it in a thread): expand and store each local recipient."""
    recipients = Recipients(store)
    results: dict[str, Result] = {}
    forward: dict[str, list[str]] = {}
    deliveries: list[tuple[str, Delivery]] = []
    blob = BlobRef(entry.blob_id, entry.size or len(data))
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
            deliveries.append((addr_text, Delivery(user_id=user.id, blob=blob)))
        if exp.remote:
            forward[addr_text] = exp.remote
        results[addr_text] = Result("sent", "2.0.0", "250 2.0.0 delivered locally"
                                    + (" and forwarded" if exp.remote else ""), hostname)
    if deliveries:
        outcome = store.deliver([d for _, d in deliveries])
        for (addr_text, _), got in zip(deliveries, outcome):
            if isinstance(got, StoreError):
                state = "failed" if got.code >= 500 else "deferred"
                results[addr_text] = Result(state, got.enhanced,
                                            f"{got.code} {got.enhanced} {got.text}", hostname)
                forward.pop(addr_text, None) if state == "deferred" else None
    return LocalOutcome(results, forward)


def with_delivered_to(address: str, data: bytes) -> bytes:
    return b"Delivered-To: " + address.encode("utf-8") + b"\r\n" + data
