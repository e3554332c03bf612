"""The one place a delivery status notification is made: the report for
recipients that could not take a message, whether SMTP found out at commit
time (a mailbox filled up) or the deliveragent after an attempt. It goes
into the queue with a null sender, like any bounce (RFC 5321 4.5.5)."""
from __future__ import annotations

from datetime import datetime, timezone

from ..mail.dsn import RecipientFailure, build_dsn, should_bounce
from ..mail.headers import header_section
from .commit import Job


def bounce_job(*, qid: str, sender: str, original: bytes, arrived: float,
               failures: list[RecipientFailure], hostname: str, postmaster: str) -> Job | None:
    """The DSN to ``sender`` about ``failures`` as a job for the ingest, or
    None when no report is due (a null sender, nothing failed)."""
    if not failures or not should_bounce(sender):
        return None
    raw = build_dsn(reporting_mta=hostname, original_sender=sender,
                    original_headers=(header_section(original[:262144]) or b"") + b"\r\n",
                    original_envelope_id=None,
                    arrival_date=datetime.fromtimestamp(arrived, timezone.utc),
                    failures=failures, postmaster=postmaster)
    return Job(qid=qid, sender="", parts=[raw], remote=[sender], kind="bounce")
