"""A message's trace as the web pages show it (the webadmin's "Message
trace", the webmail's "Where is my mail?"): each event one step of a
timeline, told in the reader's language from the facts the event recorded
(services.trace; the English `text` is what `coremail trace` prints, and is
only a fallback here). The remote server's reply is quoted as it came."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..obs.trace import TraceEvent
from ..services.trace import Story
from .i18n import N_, _

LABELS = {"received": N_("Received"), "refused": N_("Refused"), "checks": N_("Filtered"),
          "delivered": N_("Delivered"), "forwarded": N_("Forwarded"), "queued": N_("Queued"),
          "attempt": N_("Delivery attempt"), "sent": N_("Delivered remotely"),
          "bounced": N_("Bounced"), "deleted": N_("Deleted")}
VERDICTS = {"accept": N_("delivered as usual"), "junk": N_("put in the Junk folder"),
            "refuse": N_("refused")}
STATES = {"failed": N_("refused for good"), "deferred": N_("not delivered yet, will retry")}
# How the story ended, by its last telling event, for the summary line.
OUTCOMES = {"delivered": N_("delivered"), "sent": N_("delivered remotely"),
            "bounced": N_("bounced"), "refused": N_("refused"), "queued": N_("waiting in the queue"),
            "attempt": N_("waiting in the queue"), "deleted": N_("deleted from the queue"),
            "forwarded": N_("forwarded")}


@dataclass
class Step:
    at: float
    kind: str
    label: str
    words: str
    reply: str = ""          # the remote's (or our) reply, verbatim
    tls: bool | None = None  # the connection's encryption, when known
    scores: list | None = None


def _who(addrs) -> str:
    return ", ".join(f"<{a}>" for a in addrs) or _("nobody")


def _received(e: TraceEvent) -> str:
    d = e.details
    if d.get("listener") == "webmail":
        how = _("from the webmail (a browser at %(ip)s), signed in as %(user)s") % d
    elif "ip" in d:
        where = {"smtp": _("port 25 (MX)"), "submission": _("the submission port"),
                 "smtps": _("the TLS submission port")}.get(d.get("listener", ""),
                                                             d.get("listener", ""))
        how = _("from %(helo)s [%(ip)s] on %(where)s") % {
            "helo": d.get("helo") or _("a client that sent no HELO"), "ip": d["ip"],
            "where": where}
        if d.get("user"):
            how += _(", signed in as %(user)s") % d
    else:
        how = ""
    words = _("%(sender)s to %(rcpts)s") % {"sender": f"<{e.sender}>",
                                            "rcpts": _who(e.recipients)}
    if d.get("size"):
        words += _(", %(n)s bytes") % {"n": d["size"]}
    return f"{how}: {words}" if how else words


def _step(e: TraceEvent) -> Step:
    d = e.details
    label = _(LABELS.get(e.kind, e.kind))
    step = Step(e.at, e.kind, label, e.text)
    if e.kind == "received":
        step.words = _received(e)
        # The webmail's side is the browser's HTTP(S), not an SMTP session.
        step.tls = None if d.get("listener") == "webmail" else d.get("tls")
        if d.get("subject"):
            step.words += " · " + _("subject: %(s)s") % {"s": d["subject"]}
    elif e.kind == "refused":
        at = d.get("step")
        if at:
            step.words = _("refused at %(step)s; we replied:") % {"step": at}
            if at == "RCPT TO":
                step.words = _("the recipient %(r)s was refused; we replied:") % {
                    "r": f"<{d.get('recipient') or ', '.join(e.recipients)}>"}
        elif d.get("mailbox"):
            step.words = _("not stored in the mailbox of %(m)s; the sender gets a report:") % {
                "m": d["mailbox"]}
        step.reply = str(d.get("reply") or "")
    elif e.kind == "checks":
        verdict = _(VERDICTS.get(str(d.get("verdict", "")), "")) if d.get("verdict") else ""
        step.words = _("spam score %(score)s") % {"score": f"{float(d.get('score', 0)):g}"}
        if d.get("required"):
            step.words += _(" (junk from %(n)s)") % {"n": f"{float(d['required']):g}"}
        if verdict:
            step.words += _("; verdict: %(v)s") % {"v": verdict}
        step.scores = list(d.get("scores") or []) + [
            {"name": _("not checked"), "points": None, "words": w} for w in d.get("skipped", [])]
    elif e.kind == "delivered":
        if d.get("folder"):
            step.words = _("to the mailbox of %(m)s, folder %(f)s") % {
                "m": d.get("mailbox", ""), "f": d["folder"]}
        else:
            step.words = _("to %(m)s") % {"m": f"<{d.get('mailbox', '')}>"}
    elif e.kind == "forwarded":
        to = ", ".join(d.get("to") or [])
        step.words = _("%(a)s forwarded to %(to)s") % {
            "a": f"<{d.get('address') or (e.recipients[:1] or [''])[0]}>", "to": to}
        if "kept" in d:
            step.words += " (" + (_("a copy kept") if d["kept"] else _("no copy kept")) + ")"
    elif e.kind == "queued":
        if d.get("next_try"):
            step.words = _("still waiting for %(r)s; next try %(t)s UTC") % {
                "r": _who(e.recipients), "t": _utc(float(d["next_try"]))}
            step.reply = str(d.get("reason") or "")
        else:
            step.words = _("for delivery to %(r)s") % {"r": ", ".join(d.get("to") or [])}
    elif e.kind in ("attempt", "sent"):
        host = d.get("host") or ""
        where = f"{host} [{d.get('ip')}]" if host else _("no mail server found")
        n = d.get("attempt", "")
        if e.kind == "sent":
            step.words = _("attempt %(n)s: %(r)s accepted by %(where)s") % {
                "n": n, "r": _who(e.recipients), "where": where}
        else:
            state = _(STATES.get(str(d.get("state", "")), str(d.get("state", ""))))
            step.words = _("attempt %(n)s for %(r)s via %(where)s: %(state)s") % {
                "n": n, "r": _who(e.recipients), "where": where, "state": state}
        step.reply, step.tls = str(d.get("reply") or ""), d.get("tls")
    elif e.kind == "bounced":
        if d.get("bounce_qid"):
            step.words = _("%(r)s could not be delivered; a report was sent to %(to)s "
                           "(%(qid)s)") % {"r": _who(e.recipients), "to": f"<{d.get('to')}>",
                                           "qid": d["bounce_qid"]}
        else:
            step.words = _("gave up on %(r)s; no report was sent (the message is itself a "
                           "report)") % {"r": _who(e.recipients)}
    elif e.kind == "deleted":
        step.words = _("by %(by)s, without a report; it was still waiting for %(r)s") % {
            "by": d.get("by") or _("an administrator"), "r": _who(e.recipients)}
    return step


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


@dataclass
class Shown:
    story: Story
    steps: list[Step]
    outcome: str


def show(story: Story) -> Shown:
    steps = [_step(e) for e in story.events]
    last = next((e.kind for e in reversed(story.events) if e.kind in OUTCOMES), "")
    return Shown(story, steps, _(OUTCOMES[last]) if last else "")
