"""The one place a message's verdict is made: every check runs (at once,
each within its time-out), their results are summed, and the decision says
accept or refuse, which headers to add and which folder each recipient's
copy goes to. A check that fails or times out objects to nothing: mail is
never lost to a broken filter, and the decision names the check that did
not answer."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Sequence

from ..ingest import Job, LocalCopy
from ..obs.log import Log
from .checks import CheckResult, Message, MessageCheck, Score
from .envelope import Envelope
from .verdict import Verdict, ok


@dataclass
class Decision:
    verdict: Verdict
    scores: list[Score] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)   # checks that failed or timed out

    @property
    def score(self) -> float:
        return round(sum(s.points for s in self.scores), 2)

    def job(self, env: Envelope, *, qid: str, trace: bytes, content: bytes) -> Job:
        """The accepted message for the ingest service: one copy per local
        user (in the folder the checks chose), each remote address once, the
        trace and the checks' headers on top."""
        job = Job(qid=qid, sender=env.sender_text)
        seen: set[int] = set()
        for r in env.recipients:
            folder = self.folders.get(r.address.key, "INBOX")
            for u in r.users:
                if u.id not in seen:
                    seen.add(u.id)
                    job.local.append(LocalCopy(u, folder))
            for a in r.remote:
                if a not in job.remote:
                    job.remote.append(a)
        added = "".join(f"{k}: {v}\r\n" for k, v in self.headers).encode("utf-8")
        job.parts = [trace + added, content] if added else [trace, content]
        return job


async def _one(check: MessageCheck, msg: Message, timeout: float) -> CheckResult | None | str:
    try:
        return await asyncio.wait_for(check(msg), timeout)
    except asyncio.TimeoutError:
        return f"{check.name}: no answer within {timeout:g} s"
    except Exception as e:
        return f"{check.name}: {type(e).__name__}: {e}"


async def decide(checks: Sequence[MessageCheck], msg: Message, *, timeout: float,
                 log: Log | None = None) -> Decision:
    results = await asyncio.gather(*(_one(c, msg, timeout) for c in checks)) if checks else []
    d = Decision(ok("message ok"))
    refusal: Verdict | None = None
    for check, r in zip(checks, results):
        if isinstance(r, str):
            d.skipped.append(r)
            if log is not None:
                log.warning("pipeline.check_skipped", sid=msg.client.sid, reason=r)
            continue
        if r is None:
            continue
        d.scores.extend(r.scores)
        d.headers.extend(r.headers)
        d.folders.update(r.folders)
        # The first permanent refusal wins over a temporary one: the sender
        # is better told "never" at once than "later" and then "never".
        if r.verdict is not None and not r.verdict.ok:
            if refusal is None or (refusal.temporary and not r.verdict.temporary):
                refusal = r.verdict
    if refusal is not None:
        d.verdict = refusal
    return d
