"""SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, as
a part of the engine: the exchange's syntax and sequence only. Whether AUTH
may start (TLS), whose identity may be used and the verdict on the password
come from the handler (the pipeline's rules); PLAIN is decoded by the one
SASL decoder that POP3 and IMAP use."""
from __future__ import annotations

import base64
import binascii
from typing import Any

from ..pipeline.verdict import Verdict
from ..services.login import SaslMalformed, split_plain
from .parser import parse_auth_arg


def _v(code: int, enhanced: str, text: str) -> Verdict:
    return Verdict(code, enhanced, text)


class LineTooLong(Exception):
    """An over-long line where a command answer would be out of step (AUTH)."""


AUTH_LINE_TOO_LONG = Verdict(500, "5.5.6", "authentication exchange line is too long; "
                                           "authentication cancelled")


class AuthCommand:
    """Mixed into SmtpProtocol; uses its reply/_raw/_readline and session."""

    session: Any
    handler: Any
    reply: Any
    _raw: Any
    _readline: Any

    async def cmd_auth(self, arg: str) -> bool:
        s = self.session
        if not s.esmtp:
            self.reply(_v(503, "5.5.1", "AUTH needs EHLO first (HELO has no extensions)"))
            return True
        refused = self.handler.auth_start(s)
        if refused is not None:
            self.reply(refused)
            return True
        if s.authenticated:
            self.reply(_v(503, "5.5.1", "you are already logged in"))
            return True
        if s.in_transaction:
            self.reply(_v(503, "5.5.1", "AUTH is not allowed during a mail transaction"))
            return True
        mech, initial = parse_auth_arg(arg)
        if mech not in ("PLAIN", "LOGIN"):
            self.reply(_v(504, "5.5.4", f"unknown AUTH mechanism {mech}; use PLAIN or LOGIN"))
            return True
        blocked = await self.handler.auth_blocked(s)
        if blocked is not None:
            self.reply(blocked)
            return blocked.code != 421
        if mech == "PLAIN":
            if initial is None:
                initial = await self._auth_line(b"334 \r\n")
                if initial is None:
                    return True
            try:
                authz, login, password = split_plain(initial)
            except SaslMalformed:
                self.reply(_v(501, "5.5.2", "AUTH PLAIN expects base64 of authzid NUL login "
                                            "NUL password"))
                return True
            refused = self.handler.authorization(s, authz, login)
            if refused is not None:
                self.reply(refused)
                return True
        else:
            if initial is None:
                initial = await self._auth_line(b"334 VXNlcm5hbWU6\r\n")
                if initial is None:
                    return True
            login = self._b64(initial)
            if login is None:
                return True
            pw = await self._auth_line(b"334 UGFzc3dvcmQ6\r\n")
            if pw is None:
                return True
            password = self._b64(pw)
            if password is None:
                return True
        v = await self.handler.on_auth(s, login, password)
        if v.ok:
            s.authenticated = True
        self.reply(v)
        return v.code != 421

    async def _auth_line(self, prompt: bytes) -> str | None:
        self._raw(prompt)
        try:
            line = await self._readline(strict=True)
        except LineTooLong:
            # RFC 4954 4: the exchange ends here, so the next line is a command again.
            self.reply(AUTH_LINE_TOO_LONG)
            return None
        if line is None:
            raise ConnectionError("closed during AUTH")
        text = line.decode("ascii", "replace").strip()
        if text == "*":
            self.reply(_v(501, "5.0.0", "authentication cancelled"))
            return None
        return text

    def _b64(self, text: str) -> str | None:
        if text == "=":   # RFC 4954 4: "=" is an empty (initial) response
            return ""
        try:
            return base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            self.reply(_v(501, "5.5.2", "the AUTH data is not valid base64 of UTF-8 text"))
            return None
