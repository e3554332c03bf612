"""The built-in rules: a small default set, each named and scored, each
saying in words what it saw. They only add points; the sum decides.

Scores are chosen so that no single rule but a forged local sender or a
dangerous attachment puts mail into Junk (junk_score 6), and several weak
signs together do. Authenticated senders are not charged for headers their
mail program may leave to the server (Date, Message-ID).
"""
from __future__ import annotations

import ipaddress
import re
import time
import urllib.parse
from email.utils import getaddresses, parsedate_tz, mktime_tz

from ..mail.address import AddressError, parse_address
from ..mail.text import MessageText
from .checks import CheckResult, Message, Score

POINTS = {
    "SENDER_FORGED_LOCAL": 8.0,
    "HEADER_MISSING_SUBJECT": 1.0,
    "HEADER_MISSING_TO": 1.5,
    "HEADER_MISSING_DATE": 1.5,
    "HEADER_MISSING_MESSAGE_ID": 1.0,
    "HEADER_BAD_DATE": 1.5,
    "HEADER_FUTURE_DATE": 2.0,
    "HEADER_BAD_RECEIVED": 1.0,
    "HEADER_FORGED_RECEIVED": 3.0,
    "HEADER_SUBJECT_CAPS": 1.5,
    "HEADER_ENCODED_ASCII": 1.0,
    "BODY_HTML_ONLY_REMOTE_IMAGES": 2.0,
    "BODY_LINK_TO_IP": 2.5,
    "BODY_HIDDEN_TEXT": 2.0,
    "ATTACH_DANGEROUS_NAME": 6.0,
}
DANGEROUS = frozenset((
    "exe", "scr", "pif", "com", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta",
    "cpl", "msi", "msp", "jar", "lnk", "ps1", "psm1", "reg", "scf", "application", "gadget",
    "iso", "img", "vhd", "vhdx", "appx", "msix", "chm", "dll", "sys", "inf"))
FUTURE = 86400.0   # a Date more than a day ahead is forged or a broken clock
_ENCODED = re.compile(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=")
_RECEIVED_BY = re.compile(r"\bby\s+([\w.-]+)", re.IGNORECASE)


def _domain_of(value: str) -> str:
    for _, addr in getaddresses([value]):
        try:
            return parse_address(addr).domain
        except AddressError:
            continue
    return ""


def headers_missing(msg: Message, t: MessageText) -> list[Score]:
    out = []
    if not t.header("subject"):
        out.append(("HEADER_MISSING_SUBJECT", "no Subject header"))
    if not t.header("to") and not t.header("cc"):
        out.append(("HEADER_MISSING_TO", "no To or Cc header: the recipients are hidden"))
    if not msg.client.authenticated:
        if not t.header("date"):
            out.append(("HEADER_MISSING_DATE", "no Date header"))
        if not t.header("message-id"):
            out.append(("HEADER_MISSING_MESSAGE_ID", "no Message-ID header"))
    return [Score(n, POINTS[n], w) for n, w in out]


def date_and_received(msg: Message, t: MessageText) -> list[Score]:
    out = []
    dates = t.header("date")
    if dates:
        parsed = None
        try:
            p = parsedate_tz(dates[0])
            parsed = mktime_tz(p) if p else None
        except (ValueError, TypeError, OverflowError, IndexError):
            parsed = None
        if parsed is None:
            out.append(Score("HEADER_BAD_DATE", POINTS["HEADER_BAD_DATE"],
                             f"the Date header cannot be read: {dates[0][:60]!r}"))
        elif parsed > time.time() + FUTURE:
            out.append(Score("HEADER_FUTURE_DATE", POINTS["HEADER_FUTURE_DATE"],
                             "the Date header is more than a day in the future"))
    ours = msg.settings.server.hostname.lower()
    bad = forged = 0
    for value in t.header("received"):
        if ";" not in value or not re.search(r"\b(from|by)\b", value, re.IGNORECASE):
            bad += 1
        m = _RECEIVED_BY.search(value)
        if m and m.group(1).lower().rstrip(".") == ours and not msg.client.authenticated:
            forged += 1
    if bad:
        out.append(Score("HEADER_BAD_RECEIVED", POINTS["HEADER_BAD_RECEIVED"],
                         f"{bad} Received header(s) without 'from'/'by' or a date"))
    if forged:
        out.append(Score("HEADER_FORGED_RECEIVED", POINTS["HEADER_FORGED_RECEIVED"],
                         f"a Received header claims this server ({ours}) handled the "
                         "message before it arrived"))
    return out


def subject_rules(msg: Message, t: MessageText) -> list[Score]:
    out = []
    letters = [c for c in t.subject if c.isalpha() and c.isascii()]
    if len(letters) >= 10 and sum(c.isupper() for c in letters) >= 0.8 * len(letters):
        out.append(Score("HEADER_SUBJECT_CAPS", POINTS["HEADER_SUBJECT_CAPS"],
                         "the subject is written in capitals"))
    raw = msg.get("subject") or ""
    if _ENCODED.search(raw) and t.subject.isascii() and t.subject.strip():
        out.append(Score("HEADER_ENCODED_ASCII", POINTS["HEADER_ENCODED_ASCII"],
                         "the subject is MIME-encoded although it is plain ASCII"))
    return out


def body_rules(t: MessageText) -> list[Score]:
    out = []
    if t.has_html and not t.has_plain and t.remote_images:
        out.append(Score("BODY_HTML_ONLY_REMOTE_IMAGES", POINTS["BODY_HTML_ONLY_REMOTE_IMAGES"],
                         f"HTML only, with {t.remote_images} remote image(s)"))
    ips = set()
    for url in t.links[:200]:
        try:
            host = urllib.parse.urlsplit(url).hostname or ""
            ipaddress.ip_address(host)
            ips.add(host)
        except ValueError:
            continue
    if ips:
        out.append(Score("BODY_LINK_TO_IP", POINTS["BODY_LINK_TO_IP"],
                         f"links to bare IP addresses ({', '.join(sorted(ips)[:3])})"))
    if t.hidden:
        out.append(Score("BODY_HIDDEN_TEXT", POINTS["BODY_HIDDEN_TEXT"],
                         "; ".join(t.hidden[:3])))
    names = [p.filename for p in t.parts if p.filename]
    bad = [n for n in names
           if n.rstrip(". ").rpartition(".")[2].lower() in DANGEROUS and "." in n]
    if bad:
        out.append(Score("ATTACH_DANGEROUS_NAME", POINTS["ATTACH_DANGEROUS_NAME"],
                         f"an attachment that runs as a program: {bad[0][:80]!r}"))
    return out


class BuiltinRules:
    name = "rules"
    kind = "spam"

    def __init__(self, ctx):
        self.ctx = ctx

    async def __call__(self, msg: Message) -> CheckResult | None:
        t = await msg.text()
        scores = headers_missing(msg, t) + date_and_received(msg, t) + subject_rules(msg, t) \
            + body_rules(t)
        forged = await self._forged_local(msg, t)
        if forged:
            scores.insert(0, forged)
        return CheckResult(scores=scores) if scores else None

    async def _forged_local(self, msg: Message, t: MessageText) -> Score | None:
        """One of our own domains as the sender, from outside, without a login."""
        if msg.client.authenticated:
            return None
        domains = {msg.env.sender.domain} if msg.env.sender is not None else set()
        for value in t.header("from"):
            d = _domain_of(value)
            if d:
                domains.add(d)
        for d in sorted(domains):
            if await self.ctx.is_local_domain(d):
                return Score("SENDER_FORGED_LOCAL", POINTS["SENDER_FORGED_LOCAL"],
                             f"the sender claims to be of this server's domain {d} but came "
                             "from outside without logging in")
        return None
