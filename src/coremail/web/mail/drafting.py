"""The text of a message being written: what reply, reply-all and forward
start from (recipients, "Re:"/"Fwd:" subject, the quoted original, the
In-Reply-To and References of RFC 5322 3.6.4), the recipients checked by the
same address code as SMTP (one reason per field), and the RFC 5322 message
built from the form, its attachments and those carried over from a draft
or a forwarded message."""
from __future__ import annotations

import html as _html
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

import nh3

from ...mail.address import AddressError, parse_address
from ..i18n import _
from ..render import Shown

FIELDS = ("to", "cc", "bcc")
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|回复|答复|转发)\s*[:：]\s*)+", re.I)


def headers_of(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def _plain(view: Shown) -> str:
    if view.text is not None:
        return view.text
    text = nh3.clean(re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</h\d>", "\n", view.html or ""),
                     tags=set())
    return re.sub(r"\n{3,}", "\n\n", _html.unescape(text)).strip()


def start_from(raw: bytes, view: Shown, mode: str, me: str, when: str) -> dict[str, str]:
    """The form's values for a reply ("reply", "replyall") or a forward."""
    h = headers_of(raw)
    subject = _PREFIX.sub("", view.subject or "")
    body = _plain(view)
    values = {"to": "", "cc": "", "bcc": "", "subject": "", "in_reply_to": "", "references": ""}
    if mode == "forward":
        values["subject"] = "Fwd: " + subject
        head = [_("---------- Forwarded message ----------"),
                _("From: {who}").format(who=view.sender), _("Date: {when}").format(when=when),
                _("Subject: {subject}").format(subject=view.subject)]
        if view.to:
            head.append(_("To: {who}").format(who=view.to))
        values["body"] = "\n\n" + "\n".join(head) + "\n\n" + body
        return values
    values["subject"] = "Re: " + subject
    msgid = str(h.get("Message-ID", "")).strip()
    refs = str(h.get("References", "")).split()
    if not refs and h.get("In-Reply-To"):
        refs = str(h.get("In-Reply-To")).split()[:1]
    if msgid:
        values["in_reply_to"] = msgid
        values["references"] = " ".join((refs + [msgid])[-20:])
    reply_to = getaddresses([str(v) for v in h.get_all("Reply-To", [])]) or \
        getaddresses([str(v) for v in h.get_all("From", [])])
    to = [a for a in reply_to if a[1]]
    cc = []
    if mode == "replyall":
        seen = {a[1].lower() for a in to} | {me.lower()}
        for a in getaddresses([str(v) for k in ("To", "Cc") for v in h.get_all(k, [])]):
            if a[1] and a[1].lower() not in seen:
                seen.add(a[1].lower())
                cc.append(a)
    fmt = lambda pairs: ", ".join(f"{n} <{a}>" if n else a for n, a in pairs)  # noqa: E731
    values["to"], values["cc"] = fmt(to), fmt(cc)
    quoted = "\n".join("> " + line if line else ">" for line in body.splitlines())
    values["body"] = "\n\n" + _("On {when}, {who} wrote:").format(when=when, who=view.sender) \
        + "\n" + quoted + "\n"
    return values


def check_recipients(values: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per field: the normalised "Name <addr>" entries, and the errors (one per field)."""
    heads: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        heads[field] = []
        for name, addr in getaddresses([values.get(field, "")]):
            if not addr.strip():
                continue
            try:
                a = str(parse_address(addr))
            except AddressError as e:
                # the checker's own words, in the reader's language
                errors.setdefault(field, f"{addr.strip()}: {_(e.template).format(**e.params)}")
                continue
            heads[field].append(f"{name} <{a}>" if name else a)
    return heads, errors


def bare(entry: str) -> str:
    return entry.rpartition("<")[2].rstrip(">") if entry.endswith(">") else entry


def build(user, values: dict[str, str], heads: dict[str, list[str]],
          files: list[tuple[str, str, bytes]], *, with_bcc: bool) -> bytes:
    """The message, CRLF line ends; Bcc only in a draft (never in what is sent)."""
    msg = EmailMessage()
    msg["From"] = f"{user.name} <{user.address}>" if user.name else user.address
    for field, header in (("to", "To"), ("cc", "Cc")) + ((("bcc", "Bcc"),) if with_bcc else ()):
        if heads[field]:
            msg[header] = ", ".join(heads[field])
    msg["Subject"] = values.get("subject", "")
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=user.domain)
    if values.get("in_reply_to"):
        msg["In-Reply-To"] = values["in_reply_to"]
    if values.get("references"):
        msg["References"] = values["references"]
    msg.set_content(values.get("body", "").replace("\r\n", "\n"))
    for name, ctype, data in files:
        main, _slash, sub = (ctype or "application/octet-stream").partition("/")
        if main == "text" or not sub:    # keep bytes exactly: no charset guessing on text
            main, sub = "application", "octet-stream"
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes(policy=policy.SMTP.clone(max_line_length=998))
