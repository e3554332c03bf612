"""Turning failed recipients into one DSN for the envelope sender.

The DSN (ingest.bounce) goes into the queue with a null sender under an id
derived from the failed attempt, so that an agent that crashes after
queueing it and retries the attempt finds the id taken and does not send a
second report. A local sender's bounce is then stored in their INBOX by the
agent's local delivery; a remote one goes out by SMTP.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone


from ..ingest import Ingest, new_qid
from ..ingest.bounce import bounce_job
from ..mail.dsn import RecipientFailure
from ..smtpclient.session import Result
from ..store.interfaces import AlreadyExists, QueueEntry


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


def queue_bounce(ingest: Ingest, entry: QueueEntry, failed: dict[str, Result], data: bytes, *,
                 hostname: str, postmaster: str, now: float) -> str | None:
    """Blocking: queue the DSN for ``failed``; returns its queue id, or None
    when no report is due (a bounce about a bounce, or nothing failed)."""
    if not failed or entry.kind == "bounce":
        return None
    qid = derived_id(entry, "B")
    if ingest.store.queue_get(qid) is not None:
        return qid
    job = bounce_job(qid=qid, sender=entry.sender, original=data, arrived=entry.created,
                     failures=[failure_of(a, r, when=now) for a, r in failed.items()],
                     hostname=hostname, postmaster=postmaster)
    if job is None:
        return None
    job.blob_id = new_qid()   # never the id of a blob an earlier run may have queued
    ingest.commit_now([job])
    if job.error is not None and not isinstance(job.error, AlreadyExists):
        raise job.error
    return qid
