"""The one place a message's verdict is made.

1. The "list" checks (allow/block lists) run first; an allow there skips
   every "spam" check (never the virus scan). With `antispam.enabled` off
   neither lists nor spam checks run.
2. Every other check runs at once, each within its time-out.
3. Scores are summed: at or above `antispam.reject_score` the message is
   refused (550 5.7.1 ... spam score S (limit R)); at or above `junk_score`
   each recipient's copy goes to Junk (unless that recipient's own rule
   allows the sender). A check's own refusal (DNSBL, block list, virus...)
   wins; a permanent one over a temporary one.
4. Delivered mail gets `X-Spam-Status: Yes|No, score=S required=R tests=...`.

A check that fails or times out objects to nothing: mail is never lost to a
broken filter, and the decision names the check that did not answer.
Refusals carry the session id, which the administrator finds in the logs.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Sequence

from ..ingest import Job, LocalCopy
from ..mail.headers import header_end
from ..obs.log import Log
from .checks import CheckResult, Message, MessageCheck, Score
from .envelope import Envelope
from .verdict import Verdict, ok

JUNK = "Junk"


@dataclass
class Ran:
    """One check's outcome, for `coremail filter test` and the log line."""

    name: str
    kind: str
    result: CheckResult | None = None
    error: str = ""       # why it gave no answer (failed, timed out)
    skipped: str = ""     # why it was not run (allow-listed, antispam off)


@dataclass
class Decision:
    verdict: Verdict
    scores: list[Score] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)   # checks that failed or timed out
    ran: list[Ran] = field(default_factory=list)
    allowed: bool = False                              # an allow rule skipped the spam checks
    required: float = 0.0                              # antispam.junk_score when it was made
    drop: list[bytes] = field(default_factory=list)    # header fields the checks take out

    @property
    def score(self) -> float:
        return round(sum(s.points for s in self.scores), 2)

    @property
    def spam(self) -> bool:
        return not self.allowed and bool(self.required) and self.score >= self.required

    @property
    def tests(self) -> list[str]:
        return [s.name for s in self.scores]

    def explain(self) -> str:
        """Every finding in one line: `NAME=+5.0 (words); ...` (the log's `checks`)."""
        out = [f"{s.name}={s.points:+g} ({s.words.replace(';', ',')})" for s in self.scores]
        out.extend(f"{e.replace(';', ',')}" for e in self.skipped)
        return "; ".join(out)

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
        content = without_fields(content, self.drop)
        added = "".join(f"{k}: {v}\r\n" for k, v in self.headers).encode("utf-8")
        job.parts = [trace + added, content] if added else [trace, content]
        return job


def without_fields(content: bytes, drop: Sequence[bytes]) -> bytes:
    """``content`` without the given header fields (each once, header section only)."""
    if not drop:
        return content
    end = header_end(content) or 0
    header = content[:end]
    for f in drop:
        header = header.replace(f, b"", 1)
    return header + content[end:]


def kind_of(check: MessageCheck) -> str:
    return getattr(check, "kind", "spam")


def spam_status(score: float, required: float, tests: Sequence[str], spam: bool) -> str:
    """The X-Spam-Status value, in SpamAssassin's spelling."""
    return (f"{'Yes' if spam else 'No'}, score={score:.1f} required={required:.1f} "
            f"tests={','.join(tests) or 'NONE'}")


def with_reference(v: Verdict, sid: str) -> Verdict:
    """A refusal with the id the administrator can look up."""
    if not sid or v.ok:
        return v
    return Verdict(v.code, v.enhanced, f"{v.text}; if this is a mistake, ask the postmaster "
                                       f"of the recipient's domain, quoting reference {sid}")


async def _one(check: MessageCheck, msg: Message, timeout: float) -> CheckResult | None | str:
    try:
        return await asyncio.wait_for(check(msg), timeout)
    except asyncio.TimeoutError:
        return f"{check.name}: no answer within {timeout:g} s"
    except Exception as e:
        return f"{check.name}: {type(e).__name__}: {e}"


async def _run(checks: Sequence[MessageCheck], msg: Message, timeout: float
               ) -> list[CheckResult | None | str]:
    if not checks:
        return []
    return list(await asyncio.gather(*(_one(c, msg, timeout) for c in checks)))


async def decide(checks: Sequence[MessageCheck], msg: Message, *, timeout: float,
                 log: Log | None = None) -> Decision:
    spam = msg.settings.antispam
    d = Decision(ok("message ok"), required=spam.junk_score if spam.enabled else 0.0)
    first = [c for c in checks if kind_of(c) == "list"] if spam.enabled else []
    rest = [c for c in checks if kind_of(c) != "list"]
    results = await _run(first, msg, timeout)
    d.allowed = any(isinstance(r, CheckResult) and r.allow and r.verdict is None for r in results)
    off = "an allow rule matched" if d.allowed else "" if spam.enabled else "antispam is off"
    run = [c for c in rest if not off or kind_of(c) != "spam"]
    results += await _run(run, msg, timeout)
    done = dict(zip([*first, *run], results))

    refusal: Verdict | None = None
    allowed_rcpts: set[str] = set()
    own: dict[str, float] = {}      # points of recipients' own rules, for their folder only
    for check in checks:
        ran = Ran(check.name, kind_of(check))
        d.ran.append(ran)
        if check not in done:
            ran.skipped = off
            continue
        r = done[check]
        if isinstance(r, str):
            ran.error = r
            d.skipped.append(r)
            if log is not None:
                log.warning("pipeline.check_skipped", sid=msg.client.sid, reason=r)
            continue
        ran.result = r
        if r is None:
            continue
        d.drop.extend(r.drop)
        if ran.kind == "auth" and d.allowed:
            # An allow rule trusts the sender: the results are shown, not acted on.
            d.headers.extend(r.headers)
            continue
        d.scores.extend(r.scores)
        d.headers.extend(r.headers)
        d.folders.update(r.folders)
        allowed_rcpts |= r.allowed
        for key, points in r.points_for.items():
            own[key] = own.get(key, 0.0) + points
        # The first permanent refusal wins over a temporary one: the sender
        # is better told "never" at once than "later" and then "never".
        if r.verdict is not None and not r.verdict.ok:
            if refusal is None or (refusal.temporary and not r.verdict.temporary):
                refusal = with_reference(r.verdict, msg.client.sid) if ran.kind != "policy" \
                    else r.verdict
    if refusal is not None:
        d.verdict = refusal
        return d
    if not spam.enabled:
        return d
    score = d.score
    if not d.allowed and spam.reject_score and score >= spam.reject_score:
        d.verdict = with_reference(Verdict(
            550, "5.7.1", f"this message looks like spam to this server: spam score "
                          f"{score:.1f} (limit {spam.reject_score:.1f})"), msg.client.sid)
        return d
    for r in msg.env.recipients:
        key = r.address.key
        if key not in allowed_rcpts and not d.allowed and spam.junk_score and \
                score + own.get(key, 0.0) >= spam.junk_score:
            d.folders[key] = JUNK
    for key in allowed_rcpts:
        if d.folders.get(key) == JUNK:
            d.folders[key] = "INBOX"
    d.headers.insert(0, ("X-Spam-Status", spam_status(score, spam.junk_score, d.tests, d.spam)))
    return d
