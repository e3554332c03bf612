"""Sending a message as a logged-in user without SMTP (the webmail): the
same verdicts as port 587 (sender rule, each recipient, the message checks,
limits and quota), the same ingest path and queue, the same message trace
events, and a copy in the user's Sent folder. Refusals come back per recipient, in the pipeline's words, so
the page can show each next to its field."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ingest import Ingest, Job, LocalCopy, new_qid
from ..obs.trace import NullTracer, Tracer
from ..pipeline.intake_trace import IntakeTrace
from ..pipeline.envelope import Client, Envelope
from ..pipeline.rules import Pipeline
from ..pipeline.verdict import Verdict, stored_verdict
from ..store.interfaces import User


@dataclass
class SendResult:
    verdict: Verdict                                   # the whole message
    refused: dict[str, Verdict] = field(default_factory=dict)   # recipient as typed -> why
    qid: str = ""
    saved: bool = False                                # the copy in Sent

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.refused


class Sender:
    def __init__(self, pipeline: Pipeline, ingest: Ingest, tracer: Tracer | None = None):
        self.pipeline = pipeline
        self.ingest = ingest
        self.trace = IntakeTrace(tracer or NullTracer())

    async def send(self, user: User, *, ip: str, sender: str, recipients: list[str],
                   content: bytes, sent_folder: str | None = "Sent",
                   helo: str = "webmail") -> SendResult:
        """Nothing is sent unless the sender and every recipient are accepted."""
        client = Client(ip, "submission", helo=helo, tls=True, user=user)
        smtputf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        env = Envelope(declared_size=len(content), smtputf8=smtputf8, sender_raw=sender)
        v, addr = await self.pipeline.check_sender(client, sender, declared_size=len(content),
                                                   smtputf8=smtputf8)
        if not v.ok:
            return SendResult(v, {sender: v})
        env.sender = addr
        refused: dict[str, Verdict] = {}
        for raw in recipients:
            rv, rcpt = await self.pipeline.check_recipient(client, env, raw)
            if rcpt is None:
                refused[raw] = rv
            else:
                env.recipients.append(rcpt)
        if refused:
            return SendResult(Verdict(554, "5.5.0", "some recipients were refused; nothing "
                                                    "was sent"), refused)
        if not env.recipients:
            return SendResult(Verdict(554, "5.5.1", "the message has no recipients"))
        decision = await self.pipeline.check_message(client, env, content, len(content))
        seen = dict(ip=ip, helo=helo, tls=True, user=user.address, listener="webmail")
        if not decision.verdict.ok:
            self.trace.message("s:web." + new_qid(), seen, env, decision.verdict, False,
                               decision, None, content, len(content))
            return SendResult(decision.verdict)
        qid = new_qid()
        trace = self.ingest.trace(qid=qid, sender=env.sender_text, helo=helo, ip=ip, tls=True,
                                  auth=True, esmtp=True, smtputf8=smtputf8,
                                  recipients=[str(r.address) for r in env.recipients],
                                  protocol="HTTP")
        job = decision.job(env, qid=qid, trace=trace, content=content)
        copy = None
        if sent_folder:
            copy = Job(qid=new_qid(), sender="", parts=[content], report_failures=False,
                       local=[LocalCopy(user, sent_folder, frozenset({"\\Seen"}),
                                        )])
        done = await self.ingest.submit(job)
        result = SendResult(stored_verdict(done), qid=qid if done.accepted else "")
        # Recorded as SMTP records its intake (pipeline.intake_trace).
        self.trace.message(qid if done.accepted else "s:web." + qid, seen, env,
                           result.verdict, done.accepted, decision, done, content,
                           len(content))
        if copy is not None and done.accepted:
            result.saved = (await self.ingest.submit(copy)).accepted
        return result
