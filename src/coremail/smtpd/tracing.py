"""What the SMTP service tells the message trace (obs.trace), in words: the
message received (client, HELO, TLS, login), each refusal (at which step,
our reply; also for a transaction that never got a queue id), the checks'
results, and where the accepted message went (mailbox and folder,
forwarded, queued). Refused recipients wait in the session until the
transaction ends, so they join the message's block when it is accepted.
"""
from __future__ import annotations

import itertools
from typing import Any

from ..mail.headers import message_id
from ..obs.trace import TraceEvent, Tracer
from ..pipeline.decide import Decision
from ..pipeline.envelope import Envelope
from ..pipeline.verdict import Verdict
from .engine import Session

_LISTENERS = {"smtp": "port 25 (MX)", "submission": "the submission port",
              "smtps": "the TLS submission port"}
_TRANSACTIONS = itertools.count(1)


def _ref(session: Session) -> str:
    """The reference of a transaction refused before it had a queue id."""
    return f"s:{session.sid}.{next(_TRANSACTIONS)}"


def _client(session: Session, st: Any) -> dict:
    user = st.client.user.address if st.client.user else ""
    return dict(ip=session.ip, helo=st.client.helo, tls=bool(session.tls), user=user,
                listener=session.listener)


def _from_words(c: dict) -> str:
    words = f"from {c['helo'] or 'a client that sent no HELO'} [{c['ip']}] on " \
            f"{_LISTENERS.get(c['listener'], c['listener'])}, " \
            f"{'with TLS' if c['tls'] else 'without TLS'}"
    return words + (f", logged in as {c['user']}" if c["user"] else ", not logged in")


class SmtpTrace:
    def __init__(self, tracer: Tracer):
        self.tracer = tracer

    def _on(self) -> bool:
        return self.tracer.enabled()

    def sender_refused(self, session: Session, st: Any, sender: str, v: Verdict) -> None:
        if not self._on():
            return
        c = _client(session, st)
        self.tracer.emit("refused", _ref(session),
                         f"refused at MAIL FROM <{sender}> {_from_words(c)}: we replied {v}",
                         sender=sender, details={**c, "step": "MAIL FROM", "reply": str(v)})

    def recipient(self, st: Any, sender: str, raw: str, v: Verdict) -> None:
        """A refused RCPT, kept until the transaction ends (see `message`)."""
        if v.ok or not self._on():
            return
        st.trace.append(TraceEvent(
            "refused", "", f"refused the recipient <{raw}> of mail from <{sender}> at RCPT TO: "
            f"we replied {v}",
            sender=sender, recipients=(raw,), service=self.tracer.service,
            details={"step": "RCPT TO", "reply": str(v), "recipient": raw}))

    def abandoned(self, session: Session, st: Any) -> None:
        """The transaction ended without a message: its refused recipients."""
        if st.trace:
            ref = _ref(session)
            c = _client(session, st)
            for e in st.trace:
                e.qid = ref
                e.text = f"{e.text} ({_from_words(c)})"
                e.details.update(c)
                self.tracer.put(e)
            st.trace.clear()

    def message(self, session: Session, st: Any, env: Envelope, v: Verdict, qid: str,
                decision: Decision, job: Any, content: bytes, size: int) -> None:
        """The end of DATA: received or refused, the checks, where it went."""
        if not self._on():
            st.trace.clear()
            return
        ref = qid or _ref(session)
        common = dict(message_id=message_id(content), sender=env.sender_text,
                      recipients=tuple(str(r.address) for r in env.recipients))
        c = _client(session, st)
        emit = self.tracer.emit
        for e in st.trace:
            e.qid, e.message_id = ref, common["message_id"]
            e.details.update(c)
            self.tracer.put(e)
        st.trace.clear()
        rcpts = ", ".join(f"<{a}>" for a in common["recipients"]) or "nobody"
        what = f"<{env.sender_text}> to {rcpts}, {size} bytes"
        if qid:
            emit("received", ref, f"received {_from_words(c)}: {what}", **common,
                 details={**c, "size": size})
        self._checks(ref, decision, common)
        if not v.ok or not qid:
            emit("refused", ref, f"refused at the end of DATA {_from_words(c)}: {what}; "
                 f"we replied {v}", **common, details={**c, "step": "DATA", "reply": str(v),
                                                       "size": size})
            return
        for copy, _ in job.stored:
            emit("delivered", ref, f"delivered to the mailbox of {copy.user.address}, "
                 f"folder {copy.folder}", **common,
                 details={"mailbox": copy.user.address, "folder": copy.folder})
        for copy, err in job.failed:
            emit("refused", ref, f"not delivered to the mailbox of {copy.user.address}: "
                 f"{err.code} {err.enhanced} {err.text}; the sender gets a report",
                 **common, details={"mailbox": copy.user.address,
                                    "reply": f"{err.code} {err.enhanced} {err.text}"})
        for r in env.recipients:
            if r.remote and not r.relay:
                kept = "a copy kept in the mailbox" if r.users else "no copy kept"
                emit("forwarded", ref, f"<{r.address}> forwarded to "
                     f"{', '.join(r.remote)} ({kept})", **common,
                     details={"address": str(r.address), "to": list(r.remote),
                              "kept": bool(r.users)})
        if job.queued:
            emit("queued", ref, f"queued for delivery to {', '.join(job.remote)}", **common,
                 details={"to": list(job.remote)})

    def _checks(self, ref: str, decision: Decision, common: dict) -> None:
        """Every check's result and score (the hook the message checks fill:
        each `Score` of the decision, with its words)."""
        scores = [{"name": s.name, "points": s.points, "words": s.words}
                  for s in decision.scores]
        if not scores and not decision.skipped:
            return
        parts = [f"{s['name']} {s['points']:+g} ({s['words']})" for s in scores]
        parts += [f"not checked: {why}" for why in decision.skipped]
        self.tracer.emit("checks", ref, f"checks: score {decision.score:g}: "
                         + "; ".join(parts), **common,
                         details={"score": decision.score, "scores": scores,
                                  "skipped": list(decision.skipped)})
