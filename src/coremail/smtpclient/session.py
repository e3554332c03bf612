"""One outbound SMTP transaction with one host: connect, EHLO, opportunistic
STARTTLS, MAIL (with SIZE), a RCPT per recipient, DATA; the connection then
goes back to the cache (pool.py) for the next message to that host, or QUIT.

Every recipient of the message for that host rides on the one connection, and
each gets its own result. The caller's ``on_accepted`` runs synchronously the
moment the host says 250 to the data, before anything else can happen on the
event loop: that is where the queue records "sent", so a crash right after
the reply does not send the message twice. (A crash after the host stored
the message but before its 250 was read cannot be told from a lost
message by either side; RFC 1047 describes this window. The queue re-sends
then, which may duplicate, rather than risk a loss.)
"""
from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import aiosmtplib
from aiosmtplib import errors as smtperr

from .pool import Connection, ConnectionCache, opportunistic_tls, quit_and_close
from .routing import Target

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Result:
    """What happened to one recipient on one host.

    ``state``: "sent", "failed" (permanent) or "deferred" (try again later).
    ``status`` is the RFC 3463 code, ``diagnostic`` the host's reply
    ("550 5.1.1 <x@y>: user unknown") or our own sentence when there was none.
    """

    state: str
    status: str
    diagnostic: str
    host: str = ""
    ip: str = ""
    tls: bool | None = None    # did the connection use STARTTLS (None: no connection)

    @property
    def text(self) -> str:
        """"<status> <diagnostic>", the form the queue keeps as last error."""
        return f"{self.status} {self.diagnostic}"


class HostFailed(Exception):
    """This host could not take the message at all (connect, greeting, TLS,
    lost connection before any recipient): try the next host, else defer."""

    def __init__(self, status: str, text: str, permanent: bool = False):
        super().__init__(text)
        self.status, self.text, self.permanent = status, text, permanent


def enhanced_of(code: int, message: str) -> tuple[str, str]:
    """(enhanced status, message without it); a bare code gets X.0.0."""
    m = _ENHANCED.match(message.strip())
    if m and m.group(1) == str(code)[0]:
        return m.group(0), message.strip()[m.end():].strip()
    return f"{str(code)[0]}.0.0", message.strip()


def reply_result(code: int, message: str, host: str, ip: str) -> Result:
    status, _ = enhanced_of(code, message)
    text = f"{code} {' '.join(message.split())}"
    if code < 400:
        return Result("sent", "2.0.0", text, host, ip)
    return Result("failed" if code >= 500 else "deferred", status, text, host, ip)


def _needs_utf8(*values: str) -> bool:
    return not all(v.isascii() for v in values)


async def send(target: Target, *, helo: str, sender: str, recipients: Sequence[str],
               data: bytes, connect_timeout: float = 30, command_timeout: float = 300,
               on_accepted: Callable[[list[str], Result], None] | None = None,
               use_tls: bool = True, cache: ConnectionCache | None = None) -> dict[str, Result]:
    """Deliver ``data`` to ``recipients`` through ``target``; one Result each.

    Raises HostFailed when the host never got as far as judging a recipient,
    so the caller may try the next MX. A host whose STARTTLS handshake fails
    is tried once more in clear text, as opportunistic TLS intends. With a
    ``cache``, an idle connection to the same host is reused (after RSET)
    and a healthy one is left there for the next message.
    """
    key = (target.address, target.port, helo, use_tls)
    conn = await _reuse(cache, key, command_timeout) if cache is not None else None
    if conn is None:
        tls = (cache.tls if cache is not None else opportunistic_tls()) if use_tls else None
        try:
            conn = await _open(target, key, helo, connect_timeout, command_timeout, tls)
        except _TLSFailed as e:
            if not use_tls:
                raise HostFailed("4.7.5", str(e)) from None
            conn = await _open(target, key, helo, connect_timeout, command_timeout, None)
        if cache is not None:
            cache.opened += 1
    reusable = False
    try:
        results, reusable = await _transact(conn.client, target, sender, recipients, data,
                                            on_accepted)
        conn.messages += 1
        return {a: replace(r, tls=conn.tls) for a, r in results.items()}
    finally:
        if cache is None:
            await quit_and_close(conn.client)
        elif reusable:
            cache.put(conn)
        else:
            cache.discard(conn)


class _TLSFailed(Exception):
    pass


def _where(target: Target) -> str:
    return f"{target.hostname}[{target.address}]:{target.port}"


async def _reuse(cache: ConnectionCache, key: tuple, timeout: float) -> Connection | None:
    """An idle connection to ``key`` that answers RSET with 250, or None."""
    while (conn := cache.take(key)) is not None:
        try:
            await conn.client.rset(timeout=min(timeout, 30.0))
        except (smtperr.SMTPException, OSError, TimeoutError):
            cache.discard(conn)  # the host closed it while idle, or it is unwell
            continue
        cache.reused += 1
        return conn
    return None


async def _open(target: Target, key: tuple, helo: str, connect_timeout: float,
                command_timeout: float, tls: ssl.SSLContext | None) -> Connection:
    """Connect, greet (EHLO, else HELO) and start TLS with ``tls`` when offered."""
    client = aiosmtplib.SMTP(hostname=target.address, port=target.port, local_hostname=helo,
                             timeout=command_timeout, use_tls=False, start_tls=False,
                             validate_certs=False)
    try:
        await client.connect(timeout=connect_timeout)
    except smtperr.SMTPConnectResponseError as e:
        client.close()
        # A 554 greeting means "not from you / not now": another MX may take it.
        raise HostFailed(enhanced_of(e.code, e.message)[0],
                         f"{_where(target)} greeted with {e.code} {e.message}") from None
    except (smtperr.SMTPException, OSError, TimeoutError) as e:
        client.close()
        raise HostFailed("4.4.1", f"could not connect to {_where(target)}: "
                         f"{_reason(e)}") from None
    stage = "EHLO"
    encrypted = False
    try:
        try:
            await client.ehlo()
        except smtperr.SMTPHeloError:
            await client.helo()
        if tls is not None and client.supports_extension("starttls"):
            stage = "STARTTLS"
            try:
                await client.starttls(tls_context=tls, validate_certs=False)
            except (ssl.SSLError, smtperr.SMTPException, OSError) as e:
                raise _TLSFailed(f"TLS with {_where(target)} failed: {_reason(e)}") from None
            encrypted = True
            await client.ehlo()
    except _TLSFailed:
        client.close()
        raise
    except (smtperr.SMTPException, OSError, TimeoutError) as e:
        await quit_and_close(client)
        raise HostFailed("4.4.2", f"lost connection with {_where(target)} during {stage}: "
                         f"{_reason(e)}") from None
    return Connection(client, key, tls=encrypted)


async def _transact(client: aiosmtplib.SMTP, target: Target, sender: str,
                    recipients: Sequence[str], data: bytes,
                    on_accepted: Callable[[list[str], Result], None] | None,
                    ) -> tuple[dict[str, Result], bool]:
    """One MAIL/RCPT/DATA on a greeted connection: (results, reusable).

    Reusable only when no reply was negative and nothing timed out: a host
    that refused something may be rate-limiting or unwell, and a time-out
    leaves the dialogue in an unknown state.
    """
    host, ip = target.hostname, target.address
    results: dict[str, Result] = {}
    size_limit = client.esmtp_extensions.get("size", "")
    if size_limit.isdigit() and 0 < int(size_limit) < len(data):
        text = (f"552 5.3.4 message size {len(data)} exceeds the limit of "
                f"{int(size_limit)} bytes of {host}")
        return {r: Result("failed", "5.3.4", text, host, ip) for r in recipients}, True
    options = []
    if client.supports_extension("size"):
        options.append(f"SIZE={len(data)}")
    if client.supports_extension("8bitmime") and not data.isascii():
        options.append("BODY=8BITMIME")
    encoding = "ascii"
    if _needs_utf8(sender, *recipients):
        if not client.supports_extension("smtputf8"):
            text = f"{host} does not support internationalised addresses (SMTPUTF8)"
            return {r: Result("failed", "5.6.7", text, host, ip) for r in recipients}, True
        options.append("SMTPUTF8")
        encoding = "utf-8"
    stage = "MAIL FROM"
    try:
        try:
            await client.mail(sender, options=options, encoding=encoding)
        except smtperr.SMTPSenderRefused as e:
            r = reply_result(e.code, e.message, host, ip)
            return {rcpt: r for rcpt in recipients}, False
        stage = "RCPT TO"
        accepted: list[str] = []
        for rcpt in recipients:
            try:
                await client.rcpt(rcpt, encoding=encoding)
                accepted.append(rcpt)
            except smtperr.SMTPRecipientRefused as e:
                results[rcpt] = reply_result(e.code, e.message, host, ip)
        if not accepted:
            return results, False
        stage = "DATA"
        try:
            reply = await client.data(data)
        except smtperr.SMTPDataError as e:
            r = reply_result(e.code, e.message, host, ip)
            results.update({rcpt: r for rcpt in accepted})
            return results, False
        r = reply_result(reply.code, reply.message, host, ip)
        # Noted before anything else may run: see the module docstring.
        if on_accepted is not None:
            on_accepted(accepted, r)
        results.update({rcpt: r for rcpt in accepted})
        return results, not results.keys() - set(accepted)
    except (smtperr.SMTPException, OSError, TimeoutError) as e:
        text = f"lost connection with {_where(target)} during {stage}: {_reason(e)}"
        if not results and stage != "DATA":
            raise HostFailed("4.4.2", text) from None
        # Recipients not judged yet (and those whose data got no answer) wait.
        for rcpt in recipients:
            results.setdefault(rcpt, Result("deferred", "4.4.2", text, host, ip))
        return results, False


def _reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timed out"
    text = str(e) or type(e).__name__
    if (isinstance(e, ConnectionRefusedError) or "refused" in text.lower()
            or "Errno 111" in text or "Connect call failed" in text):
        return "connection refused"
    return " ".join(text.split())

