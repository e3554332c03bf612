"""The verdict object: every accept/refuse the SMTP engine says comes from one
of these, carrying the reply code, the RFC 3463 enhanced code and a sentence
that tells the client what to do. Policy modules return them; the engine only
formats them, so a rule can be tested without a socket."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..store.interfaces import QuotaExceeded

if TYPE_CHECKING:
    from ..ingest import Job


@dataclass(frozen=True, slots=True)
class Verdict:
    code: int
    enhanced: str
    text: str

    @property
    def ok(self) -> bool:
        return self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def reply(self) -> bytes:
        """The wire form, one or several lines (a text with newlines is
        continued with `code-`)."""
        lines = self.text.split("\n") or [""]
        prefix = f"{self.code} {self.enhanced} " if self.enhanced else f"{self.code} "
        cont = f"{self.code}-{self.enhanced} " if self.enhanced else f"{self.code}-"
        out = [cont + ln for ln in lines[:-1]]
        out.append(prefix + lines[-1])
        return ("\r\n".join(out) + "\r\n").encode("utf-8", "replace")

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}".replace("  ", " ")


def ok(text: str = "Ok", enhanced: str = "2.0.0", code: int = 250) -> Verdict:
    return Verdict(code, enhanced, text)


# Verdicts shared by several rules, worded once.
RELAY_DENIED = Verdict(550, "5.7.1", "relaying denied: this server only accepts mail for its "
                                     "own domains unless you log in (AUTH) first")
AUTH_REQUIRED = Verdict(530, "5.7.0", "authentication required: log in with AUTH before MAIL "
                                      "on the submission port")
TOO_MANY_RECIPIENTS = "too many recipients for one message (limit {n}); send the rest in another message"
TEMP_FAILURE = Verdict(451, "4.3.0", "a local error stopped the delivery; please try again later")


def stored_verdict(job: "Job") -> Verdict:
    """The reply for a message the ingest service has tried to store: 250
    with the queue id once any copy is safe, else why nothing was kept."""
    if job.accepted:
        return Verdict(250, "2.0.0", f"Ok: queued as {job.qid}")
    e = job.error
    if isinstance(e, QuotaExceeded):
        return Verdict(552, "5.2.2", "the recipient's mailbox is full; they must delete "
                                     "messages before receiving more")
    if e is None:
        return TEMP_FAILURE
    return Verdict(e.code, e.enhanced, e.text)
