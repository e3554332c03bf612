"""The trace fields this server puts on a message it takes in: Return-Path
and Received (RFC 5321 4.4, protocol names of RFC 3848)."""
from __future__ import annotations

import re
import time
from email.utils import formatdate

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$")
_ADDR_LITERAL = re.compile(r"^\[(?:[0-9.]+|IPv6:[0-9A-Fa-f:.]+)\]$")


def _literal(ip: str) -> str:
    """RFC 5321 4.1.3 address literal: [192.0.2.1] or [IPv6:2001:db8::1]."""
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def from_domain(helo: str) -> str:
    """The EHLO name if it is a domain or an address literal (RFC 5321 4.4
    From-domain); anything else (spaces, ';', '(' ...) would break the
    header's grammar, so it becomes "unknown" with the name as a comment."""
    if len(helo) <= 255 and (_DOMAIN.match(helo) or _ADDR_LITERAL.match(helo)):
        return helo
    safe = "".join(c for c in helo[:64] if c.isascii() and (c.isalnum() or c in "-._:[]"))
    return f"unknown (helo={safe})" if safe else "unknown"


class Clock:
    """The RFC 5322 date for trace fields, formatted once a second rather
    than per message (it showed in the SMTP profile)."""

    def __init__(self) -> None:
        self._second = 0
        self._text = ""

    def now(self) -> str:
        t = int(time.time())
        if t != self._second:
            self._second, self._text = t, formatdate(t, localtime=True)
        return self._text


def trace_headers(*, qid: str, sender: str, helo: str, ip: str, hostname: str, tls: bool,
                  auth: bool, esmtp: bool, smtputf8: bool, recipients: list[str],
                  protocol: str | None = None, clock: Clock | None = None) -> bytes:
    """Return-Path and Received for a message received from ``ip``.
    ``protocol`` overrides the RFC 3848 name (e.g. "HTTP" for the webmail)."""
    proto = protocol or ("UTF8SMTP" if smtputf8 else "ESMTP" if esmtp else "SMTP")
    if esmtp and protocol is None:
        proto += ("S" if tls else "") + ("A" if auth else "")
    rcpt = f"\r\n\tfor <{recipients[0]}>" if len(recipients) == 1 else ""
    date = (clock or Clock()).now()
    return (f"Return-Path: <{sender}>\r\n"
            f"Received: from {from_domain(helo)} ({_literal(ip)})\r\n"
            f"\tby {hostname} (coremail) with {proto} "
            f"id {qid}{rcpt};\r\n\t{date}\r\n").encode("utf-8")
