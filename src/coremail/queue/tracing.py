"""What the deliveragent tells the message trace (obs.trace), in words: each
delivery attempt (the remote host and address, its reply, what follows),
local deliveries (mailbox and folder), forwards, the next try, bounces."""
from __future__ import annotations

import time

from ..obs.trace import Tracer
from ..smtpclient.session import Result
from ..store.interfaces import QueueEntry

_STATE = {"sent": "accepted", "failed": "refused for good", "deferred": "not delivered yet"}


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _at(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


class QueueTrace:
    def __init__(self, tracer: Tracer):
        self.tracer = tracer

    def _emit(self, kind: str, entry: QueueEntry, rcpts: list[str], text: str,
              **details) -> None:
        self.tracer.emit(kind, entry.id, text, sender=entry.sender, recipients=tuple(rcpts),
                         details=details)

    def attempt(self, entry: QueueEntry, rcpts: list[str], host: str, ip: str, reply: str,
                state: str, tls: bool | None = None) -> None:
        """One try of one host (or of the route to it) for these recipients;
        ``tls``: whether the session used STARTTLS (None: no session)."""
        if not self.tracer.enabled():
            return
        who = ", ".join(f"<{a}>" for a in rcpts)
        where = f"{host} [{ip}]" if host else "no mail server"
        how = "" if tls is None else (", over TLS" if tls else ", without TLS")
        n = entry.attempts + 1
        if state == "sent":
            self._emit("sent", entry, rcpts, f"delivered to {who} by {where}{how}, which "
                       f"replied {reply}", host=host, ip=ip, reply=reply, attempt=n, tls=tls)
            return
        self._emit("attempt", entry, rcpts, f"attempt {n} for {who} via {where}{how}: "
                   f"{_STATE.get(state, state)}: {reply}", host=host, ip=ip, reply=reply,
                   state=state, attempt=n, tls=tls)

    def local(self, entry: QueueEntry, stored: list, results: dict[str, Result]) -> None:
        """A queued message for our own recipients: the copies stored, the refusals."""
        if not self.tracer.enabled():
            return
        for copy, _ in stored:
            self._emit("delivered", entry, [copy.user.address], f"delivered to the mailbox "
                       f"of {copy.user.address}, folder {copy.folder}",
                       mailbox=copy.user.address, folder=copy.folder)
        for addr, r in results.items():
            if r.state != "sent":
                self.attempt(entry, [addr], "this server", "local", r.diagnostic, r.state)

    def forwarded(self, entry: QueueEntry, addr: str, targets: list[str], new_qid: str) -> None:
        self._emit("forwarded", entry, [addr, *targets], f"<{addr}> forwarded to "
                   f"{', '.join(targets)} as {new_qid}", to=targets, new_qid=new_qid)

    def bounced(self, entry: QueueEntry, failed: list[str], bounce_qid: str | None) -> None:
        who = ", ".join(f"<{a}>" for a in failed)
        if bounce_qid:
            text = (f"bounced: {who} could not be delivered; a report (DSN) was sent to "
                    f"<{entry.sender}> as {bounce_qid}")
        else:
            text = f"gave up on {who}; no report was sent (the message is itself a report)"
        self._emit("bounced", entry, failed, text, bounce_qid=bounce_qid or "",
                   to=entry.sender)

    def deferred(self, entry: QueueEntry, rcpts: list[str], delay: float, reason: str) -> None:
        who = ", ".join(f"<{a}>" for a in rcpts)
        self._emit("queued", entry, rcpts, f"still queued for {who}: next try in "
                   f"{_span(delay)} (at {_at(time.time() + delay)}); last reply: {reason}",
                   next_try=time.time() + delay, reason=reason)
