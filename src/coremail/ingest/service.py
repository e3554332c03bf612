"""The ingest service: the one way in for a message (Postfix's cleanup).

SMTP, IMAP APPEND, the deliveragent's local delivery and forwards, bounces,
and the webmail hand a `Job` (the bytes, the local copies, the remote
recipients) to `submit` (async, group-committed) or `commit_now` (blocking,
from a thread); the outcome is written back into the job. Recipients that
could not take an accepted message (a mailbox filled up meanwhile) get the
sender a DSN from here, so no door has to remember to.
"""
from __future__ import annotations

from typing import Callable

from ..config import Settings
from ..mail.dsn import RecipientFailure
from ..obs.log import Log
from ..store.blobs import new_id
from ..store.interfaces import Store
from .bounce import bounce_job
from .commit import GroupCommitter, Job
from .trace import Clock, trace_headers


def new_qid() -> str:
    """A queue id (also the blob id): sortable by time, unique."""
    return new_id()


class Ingest:
    def __init__(self, store: Store, log: Log, settings: Callable[[], Settings]):
        self.store = store
        self.log = log
        self.settings = settings
        self.clock = Clock()
        self.committer = GroupCommitter(store, log, after=self._after)

    def trace(self, **fields) -> bytes:
        """Return-Path and Received for a message arriving now (see trace.trace_headers)."""
        return trace_headers(hostname=self.settings().server.hostname, clock=self.clock, **fields)

    async def submit(self, job: Job) -> Job:
        return await self.committer.submit(job)

    def commit_now(self, jobs: list[Job], all_or_none: bool = False) -> list[Job]:
        """Blocking (run it in a thread): the same commit without waiting for a
        batch; all_or_none: the jobs' local copies are stored together or not at all."""
        self.committer.commit(jobs, all_or_none)
        return jobs

    async def close(self) -> None:
        await self.committer.close()

    # -------------------------------------------------------- on the commit thread
    def _after(self, jobs: list[Job]) -> None:
        bounces = []
        for j in jobs:
            if not (j.accepted and j.failed and j.report_failures):
                continue
            s = self.settings()
            b = bounce_job(
                qid=new_qid(), sender=j.sender, original=j.content() if j.parts else b"",
                arrived=j.arrived, hostname=s.server.hostname,
                postmaster=f"postmaster@{s.server.domain}",
                failures=[RecipientFailure(recipient=c.user.address, status=e.enhanced,
                                           action="failed",
                                           diagnostic=f"{e.code} {e.enhanced} {e.text}")
                          for c, e in j.failed])
            if b is not None:
                bounces.append(b)
                self.log.info("ingest.bounced", qid=j.qid, bounce_qid=b.qid,
                              rcpt=",".join(c.user.address for c, _ in j.failed))
        if bounces:
            try:
                self.committer.commit(bounces)
            except Exception as e:  # the message itself is safe; the report is lost
                self.log.error("ingest.bounce_failed", error=repr(e))
