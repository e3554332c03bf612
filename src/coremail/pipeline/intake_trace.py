"""What a message's way in tells the message trace (obs.trace) once its
checks are decided: received (from whom, how, the subject), the checks with
their verdict, a refusal at the end of DATA, and where it went (mailbox and
folder, forwarded, queued). SMTP (smtpd.tracing) and the webmail's sending
(services.send) both say it here, so a message reads the same whichever
door it came in by.
"""
from __future__ import annotations

from typing import Any

from ..mail.headers import message_id, subject
from ..obs.trace import TraceEvent, Tracer
from .decide import Decision
from .envelope import Envelope
from .verdict import Verdict

LISTENERS = {"smtp": "port 25 (MX)", "submission": "the submission port",
             "smtps": "the TLS submission port", "webmail": "the webmail"}


def client_words(c: dict) -> str:
    """``c``: ip, helo, tls, user, listener (what `received` records)."""
    if c.get("listener") == "webmail":
        return f"from the webmail (a browser at {c['ip']}), signed in as {c['user']}"
    words = f"from {c['helo'] or 'a client that sent no HELO'} [{c['ip']}] on " \
            f"{LISTENERS.get(c['listener'], c['listener'])}, " \
            f"{'with TLS' if c['tls'] else 'without TLS'}"
    return words + (f", logged in as {c['user']}" if c["user"] else ", not logged in")


def verdict_of(decision: Decision) -> str:
    """accept, junk (a copy goes to a Junk folder) or refuse."""
    if not decision.verdict.ok:
        return "refuse"
    if decision.spam or any(f == "Junk" for f in decision.folders.values()):
        return "junk"
    return "accept"


class IntakeTrace:
    def __init__(self, tracer: Tracer):
        self.tracer = tracer

    def message(self, ref: str, client: dict, env: Envelope, v: Verdict, accepted: bool,
                decision: Decision, job: Any, content: bytes, size: int,
                held: list[TraceEvent] = ()) -> None:
        """``ref``: the queue id (or a refused transaction's reference);
        ``held``: refused recipients waiting to join the message's block."""
        if not self.tracer.enabled():
            return
        common = dict(message_id=message_id(content), sender=env.sender_text,
                      recipients=tuple(str(r.address) for r in env.recipients))
        for e in held:
            e.qid, e.message_id = ref, common["message_id"]
            e.details.update(client)
            self.tracer.put(e)
        emit = self.tracer.emit
        rcpts = ", ".join(f"<{a}>" for a in common["recipients"]) or "nobody"
        what = f"<{env.sender_text}> to {rcpts}, {size} bytes"
        where = client_words(client)
        if accepted:
            emit("received", ref, f"received {where}: {what}", **common,
                 details={**client, "size": size, "subject": subject(content)})
        self.checks(ref, decision, common)
        if not v.ok or not accepted:
            emit("refused", ref, f"refused at the end of DATA {where}: {what}; "
                 f"we replied {v}", **common, details={**client, "step": "DATA",
                                                       "reply": str(v), "size": size})
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

    def checks(self, ref: str, decision: Decision, common: dict) -> None:
        """Every check's result and score (each `Score` of the decision, with
        its words) and what was decided."""
        scores = [{"name": s.name, "points": s.points, "words": s.words}
                  for s in decision.scores]
        if not scores and not decision.skipped:
            return
        verdict = verdict_of(decision)
        parts = [f"{s['name']} {s['points']:+g} ({s['words']})" for s in scores]
        parts += [f"not checked: {why}" for why in decision.skipped]
        said = {"accept": "delivered as usual", "junk": "to the Junk folder",
                "refuse": f"refused ({decision.verdict})"}[verdict]
        self.tracer.emit("checks", ref, f"checks: score {decision.score:g}, {said}: "
                         + "; ".join(parts), **common,
                         details={"score": decision.score, "required": decision.required,
                                  "verdict": verdict, "scores": scores,
                                  "skipped": list(decision.skipped)})
