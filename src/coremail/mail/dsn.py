"""Delivery status notifications: the bounce a sender gets when mail fails.

Builds RFC 3464 multipart/report messages with the stdlib ``email`` package:
a plain-words explanation per recipient, the machine-readable
message/delivery-status, and the headers of the original message.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email import policy as email_policy
from email.charset import QP, Charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid
from typing import Literal

from coremail.mail.domain_hint import suggest_domain
from coremail.mail.headers import header_section

__all__ = [
    "RecipientFailure",
    "build_dsn",
    "explain",
    "should_bounce",
    "SUBJECT_FAILED",
    "SUBJECT_DELAYED",
]

SUBJECT_FAILED = "Undelivered Mail Returned to Sender"
SUBJECT_DELAYED = "Delayed Mail (still being retried)"

_STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_SMTP_REPLY_RE = re.compile(r"^[2-5]\d\d[ -]")
_MAX_ORIGINAL_HEADERS = 64 * 1024
_MAX_DIAGNOSTIC = 900
_WIDTH = 72

# The report fields are folded by hand and stored as plain strings, which
# refold_source="none" leaves alone: the email package would otherwise turn a
# long word into an RFC 2047 encoded-word, which DSN fields must not carry.
_POLICY = email_policy.SMTP.clone(refold_source="none")
_POLICY_UTF8 = email_policy.SMTPUTF8.clone(refold_source="none")


@dataclass(frozen=True)
class RecipientFailure:
    """What happened to one recipient of a message.

    ``status`` is the RFC 3463 enhanced code ("5.1.1"); ``diagnostic`` is the
    remote SMTP reply ("550 5.1.1 no such user") or, when no server was
    reached, our own sentence; ``remote_mta`` the host that gave the reply.
    """

    recipient: str
    status: str
    action: Literal["failed", "delayed"]
    remote_mta: str | None = None
    diagnostic: str | None = None
    last_attempt: datetime | None = None
    original_recipient: str | None = None  # RFC 3461 ORCPT, when it was given
    will_retry_until: datetime | None = None  # for delayed recipients

    def __post_init__(self) -> None:
        if not _STATUS_RE.match(self.status):
            raise ValueError(f"bad enhanced status code: {self.status!r}")
        if self.action not in ("failed", "delayed"):
            raise ValueError(f"bad DSN action: {self.action!r}")


def should_bounce(envelope_sender: str) -> bool:
    """May a DSN be sent about a message from ``envelope_sender``?

    False only for the null reverse-path ("" or "<>"): RFC 5321 4.5.5 and
    RFC 3464 forbid reporting on a report, which is what stops bounce loops.
    A non-null sender such as MAILER-DAEMON@host is an ordinary address by
    the RFCs and does get its bounce; guessing by local part would silently
    drop reports that some systems rely on.
    """
    return envelope_sender.strip() not in ("", "<>")


# -- the human-readable part --------------------------------------------------


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip("<> ").rstrip(".").lower()


def _in_words(span: timedelta) -> str:
    seconds = max(0, int(span.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size) if unit != "minute" else seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "a short while"


def _kind(status: str, diagnostic: str) -> str:
    """Sort a failure into one of the cases the explanation has words for."""
    cls, subject, detail = status.split(".")
    code = f"{subject}.{detail}"
    text = diagnostic.lower()
    if code == "1.10" or "null mx" in text:
        return "null_mx"
    if code == "1.2" or "nxdomain" in text or "domain not found" in text or "host not found" in text:
        return "no_domain"
    if code == "1.1":
        return "user_unknown"
    if code == "4.6" or "forwarding loop" in text:
        return "loop"
    if code == "2.2":
        return "mailbox_full"
    if code in ("3.4", "2.3"):
        return "too_large"
    if subject == "7":
        if "relay" in text and code in ("7.1", "7.0"):
            return "relay_denied"
        return "rejected"
    if code in ("4.1", "4.2", "4.7", "4.3", "4.4"):
        return "unreachable"
    # A vague code: many servers say what they mean only in words.
    if code in ("0.0", "1.0", "2.0"):
        if any(w in text for w in ("user unknown", "no such user", "unknown user",
                                   "does not exist", "mailbox unavailable", "not found")):
            return "user_unknown"
        if any(w in text for w in ("mailbox full", "quota", "over quota", "insufficient storage")):
            return "mailbox_full"
        if "too large" in text or "too big" in text or "size limit" in text:
            return "too_large"
    return "generic"


def explain(failure: RecipientFailure, *, queued_for: timedelta | None = None) -> tuple[str, str]:
    """Two plain sentences for a failure: what happened, and what the sender can do.

    ``queued_for`` is how long the message has been trying; it makes the
    could-not-connect case say "for 5 days". Also suits a one-line status
    such as ``coremail queue list``.
    """
    diag = failure.diagnostic or ""
    kind = _kind(failure.status, diag)
    domain = _domain_of(failure.recipient)
    gave_up = failure.action == "failed"
    temporary = failure.status.startswith("4")
    hint = suggest_domain(domain) if kind in ("no_domain", "null_mx") else None
    local = failure.recipient.rpartition("@")[0].strip("<")
    hint_words = (
        f" {domain} - did you mean {hint}? If so, send the message again to {local}@{hint}."
        if hint else ""
    )

    if kind == "user_unknown":
        what = (f"The address does not exist: the mail server for {domain} has no "
                "mailbox by that name.")
        todo = ("Check the spelling of the part before the @. If it is right, the "
                "person may have changed address or left; ask them for their "
                "current address another way.")
    elif kind == "no_domain":
        what = (f"The domain {domain} could not be found, so there is no mail server "
                "to deliver to.")
        todo = ("Check the part after the @ for a typing mistake." + hint_words
                + ("" if hint else " If it is right, the domain may have expired or "
                   "not be set up for email; ask the recipient."))
    elif kind == "null_mx":
        what = (f"The domain {domain} says it does not accept email at all "
                "(it publishes a \"null MX\" record).")
        todo = ("No one can receive mail at this domain. Check the address, or reach "
                "the person another way." + hint_words)
    elif kind == "loop":
        what = ("The message was going round in a circle: the recipient's forwarding or "
                "aliases keep sending it back, so it was stopped.")
        todo = ("Tell the recipient another way that their mail forwarding points back "
                "to itself; their mail administrator can fix it.")
    elif kind == "mailbox_full":
        what = "The recipient's mailbox is full, so their server could not store your message."
        todo = ("Only the recipient can fix this by making room. Try again later, or let "
                "them know another way that their mailbox is full.")
        if not gave_up:
            todo = "Nothing for now: the server keeps trying in case room is made."
    elif kind == "too_large":
        what = "Your message is bigger than the receiving mail server accepts."
        todo = ("Make it smaller: share large files as a link instead of attaching them, "
                "compress them, or spread them over several messages.")
    elif kind == "relay_denied":
        what = ("The receiving mail server refused to take the message for this address "
                "(relaying denied): it does not consider itself responsible for it.")
        todo = ("Check the address. If it is right, the recipient's domain points its "
                "mail at a server that does not know it; their mail administrator has "
                "to fix that.")
    elif kind == "rejected":
        text = diag.lower()
        if any(w in text for w in ("virus", "malware", "infected", "trojan")):
            what = ("The receiving mail server found what it thinks is a virus or harmful "
                    "content in your message, and refused it.")
        elif any(w in text for w in ("spam", "junk", "bulk", "blocklist", "blacklist",
                                     "listed", "reputation")):
            what = "The receiving mail server took your message for spam and refused it."
        elif any(w in text for w in ("spf", "dkim", "dmarc", "authenticat")) or \
                failure.status.split(".", 1)[1] in ("7.23", "7.25", "7.26", "7.27"):
            what = ("The receiving mail server refused the message because it could not "
                    "confirm that it really comes from your domain (SPF, DKIM or DMARC).")
        else:
            what = "The receiving mail server refused the message under its own rules (policy)."
        todo = ("The server's reply below often says why. Avoid what looks suspicious "
                "(many links, attachments such as .exe or .zip files), ask the recipient "
                "to add you to their allowed senders, or forward this report to your "
                "mail administrator if it keeps happening.")
    elif kind == "unreachable":
        span = f" for {_in_words(queued_for)}" if queued_for else ""
        if gave_up:
            what = (f"This server could not connect to the recipient's mail server{span}, "
                    "and has now stopped trying.")
            todo = ("Their server may be down or wrongly set up. Check the address, then "
                    "send the message again later or reach the person another way.")
        else:
            what = ("So far this server could not connect to the recipient's mail server"
                    f" (trying{span}).")
            todo = ("Nothing for now: this server keeps trying and will tell you if it "
                    "has to give up.")
    else:
        if not temporary:
            what = "The receiving mail server refused the message."
        elif gave_up:
            what = ("The receiving mail server kept answering with a temporary error, and "
                    "this server has now stopped trying.")
        else:
            what = "The receiving mail server answered with a temporary error."
        todo = ("Its reply is quoted below and may say why. If it does not make sense "
                "to you, forward this report to your mail administrator.")
        if temporary and not gave_up:
            todo = "Nothing for now: this server keeps trying. " + todo
    return what, todo


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=True, break_on_hyphens=False) or [indent]


def _original_subject(headers: bytes) -> str | None:
    try:
        parsed = BytesHeaderParser(policy=email_policy.default).parsebytes(headers)
        subject = parsed.get("Subject")
    except Exception:  # a broken header must not stop the bounce
        return None
    return " ".join(str(subject).split()) if subject else None


def _human_text(*, reporting_mta: str, original_headers: bytes, arrival_date: datetime,
                failures: list[RecipientFailure], delayed: bool, postmaster: str) -> str:
    lines = [f"This is the mail server at {reporting_mta}.", ""]
    many = len(failures) != 1
    if delayed:
        intro = (f"Your message has not reached {'some of its recipients' if many else 'its recipient'} "
                 "yet. There is no need to send it again: the server keeps trying, and "
                 "will write again if it has to give up.")
    else:
        intro = (f"Your message could not be delivered to {'some of its recipients' if many else 'its recipient'}. "
                 "Below is what went wrong for each address and what you can do. A "
                 "technical report and the headers of your message are attached.")
    lines += _wrap(intro, "")
    lines.append("")
    subject = _original_subject(original_headers)
    if subject:
        lines += _wrap(f"Subject: {subject}", "  ")
    lines.append(f"  Sent:    {format_datetime(arrival_date)}")
    for f in failures:
        lines += ["", f"<{f.recipient}>"]
        end = f.last_attempt or datetime.now(timezone.utc)
        what, todo = explain(f, queued_for=_aware(end) - arrival_date)
        lines += _wrap("What happened: " + what, "    ")
        lines += _wrap("What you can do: " + todo, "    ")
        if f.diagnostic:
            said = f"The server {f.remote_mta} said:" if f.remote_mta else "Details:"
            lines += _wrap(said, "    ")
            lines += _wrap(_one_line(f.diagnostic), "        ")
    lines += [""]
    lines += _wrap(f"If you need help, forward this message with its attachments to "
                   f"your mail administrator at <{postmaster}>.", "")
    return "\n".join(lines) + "\n"


# -- the machine-readable part ------------------------------------------------


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _one_line(text: str) -> str:
    """Join a (multi-line) reply into one line, the way a report field needs it."""
    return " ".join(text.split())


def _ascii_field(text: str) -> str:
    text = _one_line(text).encode("ascii", "replace").decode("ascii")
    return text[:_MAX_DIAGNOSTIC]


def _fold(name: str, value: str) -> str:
    """Fold a field value at spaces so lines stay within 78 (998 for a huge word)."""
    lines: list[str] = []
    current = ""
    width = 78 - len(name) - 2
    for word in value.split(" "):
        for chunk in (word[i:i + 900] for i in range(0, max(len(word), 1), 900)):
            if current and len(current) + 1 + len(chunk) > width:
                lines.append(current)
                current, width = chunk, 77
            else:
                current = f"{current} {chunk}" if current else chunk
    lines.append(current)
    return "\r\n ".join(lines)


def _address_field(address: str) -> str:
    if address.isascii():
        return f"rfc822; {address}"
    # RFC 6533 3.2: utf-8-addr-xtext, non-ASCII written as \x{HEX}.
    escaped = "".join(c if c.isascii() and 0x21 <= ord(c) < 0x7F and c not in "\\+="
                      else f"\\x{{{ord(c):X}}}" for c in address)
    return f"utf-8; {escaped}"


def _block(fields: list[tuple[str, str]]) -> Message:
    block = Message(policy=email_policy.compat32)
    for name, value in fields:
        block[name] = _fold(name, value)
    return block


def _status_part(*, reporting_mta: str, original_envelope_id: str | None,
                 arrival_date: datetime, failures: list[RecipientFailure]) -> Message:
    per_message = [("Reporting-MTA", f"dns; {_ascii_field(reporting_mta)}")]
    if original_envelope_id:
        per_message.append(("Original-Envelope-Id", _ascii_field(original_envelope_id)))
    per_message.append(("Arrival-Date", format_datetime(arrival_date)))
    blocks = [_block(per_message)]
    for f in failures:
        fields: list[tuple[str, str]] = []
        if f.original_recipient:
            fields.append(("Original-Recipient", _address_field(f.original_recipient)))
        fields += [
            ("Final-Recipient", _address_field(f.recipient)),
            ("Action", f.action),
            ("Status", f.status),
        ]
        if f.remote_mta:
            fields.append(("Remote-MTA", f"dns; {_ascii_field(f.remote_mta)}"))
        if f.diagnostic:
            diag = _ascii_field(f.diagnostic)
            # Our own words (no server reached) are not an SMTP reply.
            kind = "smtp" if _SMTP_REPLY_RE.match(diag) else "X-Coremail"
            fields.append(("Diagnostic-Code", f"{kind}; {diag}"))
        if f.last_attempt:
            fields.append(("Last-Attempt-Date", format_datetime(_aware(f.last_attempt))))
        if f.will_retry_until and f.action == "delayed":
            fields.append(("Will-Retry-Until", format_datetime(_aware(f.will_retry_until))))
        blocks.append(_block(fields))
    part = Message(policy=_POLICY)
    part["Content-Type"] = "message/delivery-status"
    part["Content-Description"] = "Delivery report"
    part.set_payload(blocks)
    return part


def _text_part(text: str, subtype: str, description: str) -> MIMEText:
    if text.isascii() and all(len(line) < 998 for line in text.splitlines()):
        part = MIMEText(text, subtype, "us-ascii", policy=_POLICY)
    else:
        charset = Charset("utf-8")
        charset.body_encoding = QP
        part = MIMEText(text, subtype, charset, policy=_POLICY)  # type: ignore[arg-type]
    del part["MIME-Version"]  # said once, at the top
    part["Content-Description"] = description
    return part


def _header_section(original: bytes) -> str:
    data = (header_section(original) or b"").replace(b"\r\n", b"\n")
    data = data[:_MAX_ORIGINAL_HEADERS]
    return data.decode("utf-8", "replace").rstrip("\n") + "\n"


def build_dsn(
    *,
    reporting_mta: str,
    original_sender: str,
    original_headers: bytes,
    original_envelope_id: str | None,
    arrival_date: datetime,
    failures: list[RecipientFailure],
    delayed: bool = False,
    postmaster: str,
) -> bytes:
    """The complete DSN message, CRLF line endings, ready to queue with a null sender.

    ``original_headers`` may be the whole original message; only its header
    section is attached. Naive datetimes are taken as UTC. A non-ASCII
    ``original_sender`` makes a message that needs SMTPUTF8 to send.
    """
    if not should_bounce(original_sender):
        raise ValueError("no DSN is ever sent to the null sender")
    if not failures:
        raise ValueError("a DSN needs at least one recipient")
    arrival_date = _aware(arrival_date)
    sender = original_sender.strip().strip("<>")
    policy = _POLICY if sender.isascii() else _POLICY_UTF8

    msg = MIMEMultipart("report", report_type="delivery-status", policy=policy)
    msg["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    msg["To"] = sender
    msg["Subject"] = SUBJECT_DELAYED if delayed else SUBJECT_FAILED
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=reporting_mta)
    msg["Auto-Submitted"] = "auto-replied"
    msg.preamble = "This is a delivery status report in MIME format (RFC 3464)."

    human = _human_text(reporting_mta=reporting_mta, original_headers=original_headers,
                        arrival_date=arrival_date, failures=failures, delayed=delayed,
                        postmaster=postmaster)
    msg.attach(_text_part(human, "plain", "Notification"))
    msg.attach(_status_part(reporting_mta=reporting_mta,
                            original_envelope_id=original_envelope_id,
                            arrival_date=arrival_date, failures=failures))
    msg.attach(_text_part(_header_section(original_headers), "rfc822-headers",
                          "Headers of the undelivered message"))
    return msg.as_bytes(policy=policy)
