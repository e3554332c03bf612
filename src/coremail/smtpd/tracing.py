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

from ..obs.trace import TraceEvent, Tracer
from ..pipeline.decide import Decision
from ..pipeline.intake_trace import IntakeTrace, client_words
from ..pipeline.envelope import Envelope
from ..pipeline.verdict import Verdict
from .engine import Session

_TRANSACTIONS = itertools.count(1)


def _ref(session: Session) -> str:
    """The reference of a transaction refused before it had a queue id."""
    return f"s:{session.sid}.{next(_TRANSACTIONS)}"


def _client(session: Session, st: Any) -> dict:
    user = st.client.user.address if st.client.user else ""
    return dict(ip=session.ip, helo=st.client.helo, tls=bool(session.tls), user=user,
                listener=session.listener)


class SmtpTrace:
    def __init__(self, tracer: Tracer):
        self.tracer = tracer
        self.intake = IntakeTrace(tracer)

    def _on(self) -> bool:
        return self.tracer.enabled()

    def sender_refused(self, session: Session, st: Any, sender: str, v: Verdict) -> None:
        if not self._on():
            return
        c = _client(session, st)
        self.tracer.emit("refused", _ref(session),
                         f"refused at MAIL FROM <{sender}> {client_words(c)}: we replied {v}",
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
                e.text = f"{e.text} ({client_words(c)})"
                e.details.update(c)
                self.tracer.put(e)
            st.trace.clear()

    def message(self, session: Session, st: Any, env: Envelope, v: Verdict, qid: str,
                decision: Decision, job: Any, content: bytes, size: int) -> None:
        """The end of DATA: received or refused, the checks, where it went
        (pipeline.intake_trace, the words the webmail's sending shares)."""
        if not self._on():
            st.trace.clear()
            return
        held, st.trace = st.trace, []
        self.intake.message(qid or _ref(session), _client(session, st), env, v, bool(qid),
                            decision, job, content, size, held)
