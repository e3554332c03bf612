"""Turning failed recipients into one DSN for the envelope sender.

The DSN (mail.dsn.build_dsn) is written as a blob and queued with a null
sender under an id derived from the failed attempt, so that an agent that
crashes after queueing it and retries the attempt finds the id taken and
does not send a second report. A local sender's bounce is then stored in
their INBOX by the agent's local delivery; a remote one goes out by SMTP.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone


from ..mail.dsn import RecipientFailure, build_dsn, should_bounce
from ..smtpclient.session import Result
from ..store.interfaces import AlreadyExists, QueueEntry, Store
from .local import header_section


def derived_id(entry: QueueEntry, tag: str) -> str:
    """An id for a message this attempt of ``entry`` makes (a bounce "B", a
    forward "F"): the same on a retry of the same attempt."""
    qid = f"{entry.id}{tag}{entry.attempts}"
    if len(qid) <= 32:
        return qid
    return f"{entry.id[:18]}{tag}{hashlib.sha1(qid.encode()).hexdigest()[:12]}"


def failure_of(address: str, result: Result, *, when: float) -> RecipientFailure:
    return RecipientFailure(
        recipient=address, status=result.status, action="failed",
        remote_mta=result.host or None, diagnostic=result.diagnostic or None,
        last_attempt=datetime.fromtimestamp(when, timezone.utc))


def queue_bounce(store: Store, entry: QueueEntry, failed: dict[str, Result], data: bytes, *,
                 hostname: str, postmaster: str, now: float) -> str | None:
    """Queue the DSN for ``failed``; returns its queue id, or None when no
    report is due (a bounce about a bounce, or nothing failed)."""
    if not failed or not should_bounce(entry.sender) or entry.kind == "bounce":
        return None
    qid = derived_id(entry, "B")
    if store.queue_get(qid) is not None:
        return qid
    dsn = build_dsn(reporting_mta=hostname, original_sender=entry.sender,
                    original_headers=header_section(data) + b"\r\n\r\n",
                    original_envelope_id=None,
                    arrival_date=datetime.fromtimestamp(entry.created, timezone.utc),
                    failures=[failure_of(a, r, when=now) for a, r in failed.items()],
                    postmaster=postmaster)
    blob = store.blobs.write(dsn)  # type: ignore[attr-defined]
    try:
        store.enqueue(queue_id=qid, blob=blob, sender="", recipients=[entry.sender],
                      kind="bounce")
    except AlreadyExists:
        store.blobs.delete([blob.id])  # type: ignore[attr-defined]  # queued by an earlier run
    return qid
