"""The SMTP protocol engine (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, STARTTLS and AUTH PLAIN/LOGIN).

It only knows syntax and sequence. Every accept/refuse of a sender, recipient,
login or message comes from the `Handler` it is given, as a `Verdict`. It is an
asyncio.Protocol with its own buffer: DATA arrives in large chunks, the end
marker is found with bytes.find and dot-unstuffing is one bytes.replace, and
replies to pipelined commands go out in one write when the input runs dry.
AUTH is in auth.py and BDAT in bdat.py, mixed into SmtpProtocol.

Bounds against a hostile client: input stops being read while the output to
the client is over the transport's high-water mark (a client that never reads
its replies) or command input is over PAUSE_ABOVE; a command line must be
complete within limits.idle_timeout and DATA must end a line (or bring
SPOOL_ABOVE bytes) within limits.data_timeout, however slowly it trickles; a
message past SPOOL_ABOVE goes to a spool file while it arrives.
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..pipeline.verdict import TEMP_FAILURE, Verdict
from .auth import AuthCommand, LineTooLong
from .bdat import SPOOL_ABOVE, SPOOL_FAILED, BdatCommand
from .parser import (Path, SyntaxReply, crlf, has_bare_eol, parse_command, parse_path,
                     parse_size_param)

PAUSE_ABOVE = 1 << 20   # command-mode input buffered before we stop reading
OUT_ABOVE = 1 << 16     # replies queued before they are written and drained


@dataclass
class EngineConfig:
    hostname: str
    size_limit: int
    max_line_length: int = 4096
    max_unknown_commands: int = 10
    idle_timeout: float = 300.0
    data_timeout: float = 600.0
    tls: ssl.SSLContext | None = None
    chunking: bool = True
    spool: Any = None   # () -> an anonymous binary file for a big message; None: memory


@dataclass
class Session:
    """What a handler may read about a connection."""

    sid: str
    ip: str
    port: int
    listener: str
    tls: bool = False
    helo: str = ""
    esmtp: bool = False
    authenticated: bool = False
    state: Any = None          # the handler's own per-session object
    in_transaction: bool = False
    rcpt_ok: int = 0
    rcpt_tried: int = 0
    params: dict = field(default_factory=dict)


class Handler(Protocol):
    def engine_config(self, session: Session) -> EngineConfig: ...
    async def on_connect(self, session: Session) -> Verdict | None: ...
    def on_helo(self, session: Session, name: str) -> None: ...
    def auth_start(self, session: Session) -> Verdict | None: ...
    def authorization(self, session: Session, authzid: str, login: str) -> Verdict | None: ...
    async def auth_blocked(self, session: Session) -> Verdict | None: ...
    async def on_auth(self, session: Session, login: str, password: str) -> Verdict: ...
    async def on_mail(self, session: Session, path: Path) -> Verdict: ...
    async def on_rcpt(self, session: Session, path: Path) -> Verdict: ...
    def data_limit(self, session: Session) -> int: ...
    def too_big(self, session: Session, size: int) -> Verdict: ...
    async def on_message(self, session: Session, content: bytes, size: int) -> Verdict: ...
    def on_reset(self, session: Session) -> None: ...
    def on_close(self, session: Session, reason: str) -> None: ...
    def on_error(self, session: Session, exc: BaseException) -> None: ...


def _v(code: int, enhanced: str, text: str) -> Verdict:
    return Verdict(code, enhanced, text)


class SpoolFailed(Exception):
    """The spool file of a big message could not be written (disk full)."""


def _unstuff(buf: bytearray, end: int, skip: int) -> bytes:
    """buf[:end], a piece of DATA that starts with a CRLF and ends before one:
    bare line ends made CRLF (before unstuffing, as RFC 5321 4.1.1.4 reads
    them), the leading dot of each line removed, the first `skip` bytes left out."""
    if has_bare_eol(buf, end):   # rare
        raw = crlf(bytes(memoryview(buf)[:end]))
        return raw.replace(b"\r\n..", b"\r\n.")[skip:]
    if buf.find(b"\r\n..", 0, end) >= 0:
        return bytes(memoryview(buf)[:end]).replace(b"\r\n..", b"\r\n.")[skip:]
    return bytes(memoryview(buf)[skip:end])


BYE = _v(221, "2.0.0", "bye")
OK = _v(250, "2.0.0", "Ok")
SEQ_HELO = _v(503, "5.5.1", "say EHLO (or HELO) first")
SEQ_MAIL = _v(503, "5.5.1", "send MAIL FROM first")
SEQ_RCPT = _v(503, "5.5.1", "send RCPT TO first: the message has no recipient yet")
NO_VALID_RCPT = _v(554, "5.5.1", "no valid recipients: every RCPT TO was refused")
SHUTDOWN = _v(421, "4.3.2", "the server is shutting down; please try again shortly")
TIMEOUT = _v(421, "4.4.2", "timeout waiting for input; closing the connection")


class SmtpProtocol(AuthCommand, BdatCommand, asyncio.Protocol):
    def __init__(self, handler: Handler, session: Session,
                 on_open: Any = None, on_done: Any = None):
        self.handler = handler
        self.session = session
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._scan = 0
        self._eof = False
        self._waiter: asyncio.Future | None = None
        self._out: list[bytes] = []
        self._out_len = 0
        self._paused = False
        self._write_paused = False
        self._on_open = on_open
        self._on_done = on_done
        self.deadline = float("inf")   # the service's sweeper closes us past it
        self.idle = False              # waiting for a command: safe to say goodbye
        self.closing = False
        self._task: asyncio.Task | None = None
        self._unknown = 0
        self._bdat: bytearray | None = None
        self._bdat_refused: Verdict | None = None
        self.cfg: EngineConfig | None = None

    # ------------------------------------------------------------ transport
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self._on_open:
            self._on_open(self)
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._paused and len(self._buf) > PAUSE_ABOVE and self._bdat is None \
                and not self._in_data:
            self._paused = True
            self.transport.pause_reading()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def eof_received(self) -> bool | None:
        self._eof = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    _in_data = False

    # --------------------------------------------------------------- output
    def reply(self, v: Verdict) -> None:
        self._raw(v.reply())

    def _raw(self, data: bytes) -> None:
        self._out.append(data)
        self._out_len += len(data)

    def flush(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out) if len(self._out) > 1 else self._out[0])
        self._out.clear()
        self._out_len = 0

    async def _drain(self) -> None:
        """Write out what is queued; while the client does not take it, read
        nothing more from it (its commands would only queue more replies).
        Bounded by the idle time-out, as waiting for a command is."""
        self.flush()
        if not self._write_paused:
            return
        if not self._paused:
            self._paused = True
            self.transport.pause_reading()
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + self.cfg.idle_timeout
        try:
            while self._write_paused and not self._eof:
                self._waiter = loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        finally:
            self.deadline = float("inf")

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def goodbye(self) -> None:
        """Graceful stop: an idle session gets 421 now; a busy one after its
        current transaction (checked before the next command)."""
        self.closing = True
        if self.idle:
            self.reply(SHUTDOWN)
            self.close()
            w = self._waiter
            if w is not None and not w.done():
                w.set_result(None)

    def timed_out(self) -> None:
        self.reply(TIMEOUT)
        if self._write_paused and self.transport is not None:
            self.transport.abort()   # it does not read: its buffer would never drain
        self.close()
        self._eof = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # ---------------------------------------------------------------- input
    async def _wait(self, deadline: float) -> None:
        """Park until more input (or its end); the sweeper ends the session
        past `deadline` (loop time)."""
        self.flush()
        # In DATA the message itself must come in (even if a client sent it
        # before the 354 and it filled the buffer); else only below the mark.
        if self._paused and (self._in_data or len(self._buf) < PAUSE_ABOVE // 2):
            self._paused = False
            self.transport.resume_reading()
        loop = asyncio.get_running_loop()
        self.deadline = deadline
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
            self.deadline = float("inf")

    async def _readline(self, strict: bool = False) -> bytes | None:
        """The next command line without CRLF; None at EOF. Over-long lines
        are answered and skipped here (with `strict`, LineTooLong is raised)."""
        cfg = self.cfg
        too_long = False
        # The whole line within the time-out: trickling bytes does not extend it.
        deadline = asyncio.get_running_loop().time() + cfg.idle_timeout
        while True:
            i = self._buf.find(b"\n", self._scan)
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 1]
                self._scan = 0
                if too_long or len(line) > cfg.max_line_length:
                    too_long = False
                    if strict:
                        raise LineTooLong()
                    if self._bad_command(_v(500, "5.5.2", "line too long: commands are "
                                            f"limited to {cfg.max_line_length} characters")):
                        return None
                    deadline = asyncio.get_running_loop().time() + cfg.idle_timeout
                    continue
                return line[:-1] if line.endswith(b"\r") else line
            if len(self._buf) > cfg.max_line_length:
                too_long = True
                self._buf.clear()
            self._scan = len(self._buf)
            if self._eof or self.closing:
                return None
            self.idle = True
            try:
                await self._wait(deadline)
            finally:
                self.idle = False

    async def _read_data(self, limit: int) -> tuple[bytes, int] | None:
        """The message after DATA/354 up to CRLF.CRLF, unstuffed; and its size
        (bytes received). Past `limit` the bytes are dropped but still counted,
        and b"" is returned with the size. None at EOF. Past SPOOL_ABOVE the
        message goes to a spool file, unstuffed piece by piece, each piece
        ending before a CRLF so no dot-stuffed line is cut in two."""
        self._in_data = True
        spool = None
        try:
            buf = self._buf
            buf[0:0] = b"\r\n"    # so a dot on the first line looks like any other
            scan = 0
            taken = 0          # bytes moved out of buf (to the spool, or dropped)
            dropping = failed = False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.cfg.data_timeout
            while True:
                i = buf.find(b"\r\n.\r\n", scan)
                if i >= 0:
                    break
                if not dropping and taken + len(buf) > limit + 1024:
                    dropping = True
                    if spool is not None:
                        spool.close()
                        spool = None
                if dropping:
                    if len(buf) > 4:
                        taken += len(buf) - 4
                        del buf[:-4]
                elif len(buf) > SPOOL_ABOVE and self.cfg.spool is not None:
                    cut = buf.rfind(b"\r\n", 1)
                    if cut <= 0:
                        cut = len(buf) - 3 - (buf[-4] == 13)
                    try:
                        if spool is None:
                            spool = self.cfg.spool()
                        spool.write(_unstuff(buf, cut, 0 if taken else 2))
                    except OSError:   # read on to the end, then say why
                        failed = dropping = True
                    del buf[:cut]
                    taken += cut
                    deadline = loop.time() + self.cfg.data_timeout
                if self._eof:
                    return None
                scan = max(0, len(buf) - 4)
                await self._wait(deadline)
                if buf.find(b"\n", scan) >= 0:   # a line ended: the time-out starts again
                    deadline = loop.time() + self.cfg.data_timeout
            end = i + 2
            if dropping:
                self._buf = bytearray(memoryview(buf)[i + 5:])
                if failed:
                    raise SpoolFailed()
                return b"", taken + end
            piece = _unstuff(buf, end, 0 if taken else 2)
            self._buf = bytearray(memoryview(buf)[i + 5:])
            if spool is None:
                content = piece
            else:
                try:
                    spool.write(piece)
                    spool.seek(0)
                    content = spool.read()
                except OSError:
                    raise SpoolFailed() from None
            return content, len(content)
        finally:
            self._in_data = False
            if spool is not None:
                spool.close()

    def _bad_command(self, v: Verdict) -> bool:
        """Answer a bad or unknown command; past the limit, 421 and True (end)."""
        self._unknown += 1
        if self._unknown >= self.cfg.max_unknown_commands:
            self.reply(_v(421, "4.7.0", "too many bad or unknown commands; closing the "
                                        "connection"))
            self.close()
            return True
        self.reply(v)
        return False

    # ---------------------------------------------------------------- loop
    async def _serve(self) -> None:
        s, h = self.session, self.handler
        reason = "quit"
        try:
            self.cfg = h.engine_config(s)
            refusal = await h.on_connect(s)
            if refusal is not None:
                self.reply(refusal)
                reason = "refused"
                return
            self.reply(_v(220, "", f"{self.cfg.hostname} ESMTP ready"))
            while True:
                if self.closing:
                    self.reply(SHUTDOWN)
                    reason = "shutdown"
                    return
                line = await self._readline()
                if line is None:
                    reason = "eof" if not self.closing else "shutdown"
                    return
                if not await self._dispatch(line):
                    return
                if self._write_paused or self._out_len > OUT_ABOVE:
                    await self._drain()
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        except (ConnectionError, ssl.SSLError) as e:
            reason = f"connection: {e}"
        except Exception as e:
            reason = "error"
            h.on_error(s, e)
            self.reply(_v(421, "4.3.0", "internal error; closing the connection"))
        finally:
            if s.in_transaction:
                h.on_reset(s)
            h.on_close(s, reason)
            self.close()
            if self._on_done:
                self._on_done(self)

    async def _dispatch(self, line: bytes) -> bool:
        """Run one command; False to end the session."""
        try:
            cmd = parse_command(line)
        except SyntaxReply as e:
            return not self._bad_command(e.verdict)
        fn = _COMMANDS.get(cmd.verb)
        if fn is None:
            return not self._bad_command(_v(500, "5.5.1", f"command {cmd.verb} not recognised"))
        try:
            return await fn(self, cmd.arg)
        except SyntaxReply as e:
            self.reply(e.verdict)
            return True
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            raise
        except Exception as e:   # a bug must never cost other sessions, nor leak a traceback
            self.handler.on_error(self.session, e)
            self.reply(TEMP_FAILURE)
            self._reset()
            return True

    def _reset(self) -> None:
        s = self.session
        if s.in_transaction:
            self.handler.on_reset(s)
        s.in_transaction = False
        s.rcpt_ok = s.rcpt_tried = 0
        s.params = {}
        self._drop_bdat()
        self._bdat_refused = None

    # ------------------------------------------------------------ commands
    async def cmd_ehlo(self, arg: str, esmtp: bool = True) -> bool:
        if not arg:
            self.reply(_v(501, "5.5.4", f"syntax: {'EHLO' if esmtp else 'HELO'} your-host-name"))
            return True
        self._reset()
        s = self.session
        s.helo, s.esmtp = arg.split()[0], esmtp
        self.handler.on_helo(s, s.helo)
        greet = f"{self.cfg.hostname} greets {s.helo}"
        if not esmtp:
            self.reply(_v(250, "", greet))
            return True
        lines = [greet, "PIPELINING", f"SIZE {self.cfg.size_limit}", "8BITMIME", "SMTPUTF8",
                 "ENHANCEDSTATUSCODES"]
        if self.cfg.chunking:
            lines.append("CHUNKING")
        if self.cfg.tls is not None and not s.tls:
            lines.append("STARTTLS")
        if s.tls and not s.authenticated:
            lines.append("AUTH PLAIN LOGIN")
        self._raw("".join(f"250-{x}\r\n" for x in lines[:-1]).encode()
                  + f"250 {lines[-1]}\r\n".encode())
        return True

    async def cmd_helo(self, arg: str) -> bool:
        return await self.cmd_ehlo(arg, esmtp=False)

    async def cmd_starttls(self, arg: str) -> bool:
        s = self.session
        if self.cfg.tls is None:
            self.reply(_v(502, "5.5.1", "STARTTLS is not offered here"))
            return True
        if s.tls:
            self.reply(_v(503, "5.5.1", "TLS is already active"))
            return True
        if arg:
            self.reply(_v(501, "5.5.4", "syntax: STARTTLS takes no argument"))
            return True
        self.reply(_v(220, "2.0.0", "ready to start TLS"))
        self.flush()
        # RFC 3207 5: anything the client pipelined after STARTTLS is discarded.
        self._buf.clear()
        self._scan = 0
        loop = asyncio.get_running_loop()
        try:
            tr = await asyncio.wait_for(loop.start_tls(self.transport, self, self.cfg.tls,
                                                       server_side=True), 30)
        except (asyncio.TimeoutError, ssl.SSLError, ConnectionError, OSError):
            return False
        self.transport = tr
        self._reset()
        s.tls, s.helo, s.esmtp = True, "", False
        return True

    async def cmd_mail(self, arg: str) -> bool:
        s = self.session
        if not s.helo:
            self.reply(SEQ_HELO)
            return True
        if s.in_transaction:
            self.reply(_v(503, "5.5.1", "a transaction is already open: RSET first"))
            return True
        path = parse_path(arg, "FROM", allow_null=True)
        params = {}
        for key, value in path.params.items():
            if key == "SIZE":
                params["size"] = parse_size_param(value)
            elif key == "BODY":
                if (value or "").upper() == "BINARYMIME":   # RFC 3030 3: not advertised
                    raise SyntaxReply(555, "5.5.4", "BODY=BINARYMIME is not offered here; "
                                                    "send the message as 8BITMIME")
                if (value or "").upper() not in ("7BIT", "8BITMIME"):
                    raise SyntaxReply(501, "5.5.4", "BODY= takes 7BIT or 8BITMIME")
                params["body"] = value.upper()
            elif key == "SMTPUTF8" and value is None:
                params["smtputf8"] = True
            elif key == "AUTH":
                continue   # RFC 4954 5: informational; we ignore it
            else:
                raise SyntaxReply(555, "5.5.4", f"MAIL FROM parameter {key} is not supported")
        if not s.esmtp and path.params:
            raise SyntaxReply(555, "5.5.4", "parameters need EHLO, not HELO")
        s.params = params
        v = await self.handler.on_mail(s, path)
        if v.ok:
            s.in_transaction = True
        self.reply(v)
        return True

    async def cmd_rcpt(self, arg: str) -> bool:
        s = self.session
        if not s.in_transaction:
            self.reply(SEQ_MAIL)
            return True
        path = parse_path(arg, "TO", allow_null=False)
        if path.params:
            raise SyntaxReply(555, "5.5.4", f"RCPT TO parameter {next(iter(path.params))} is "
                                            "not supported")
        s.rcpt_tried += 1
        v = await self.handler.on_rcpt(s, path)
        if v.ok:
            s.rcpt_ok += 1
        self.reply(v)
        return v.code != 421   # e.g. a directory harvest: the handler ends the session

    async def cmd_data(self, arg: str) -> bool:
        s = self.session
        if arg:
            self.reply(_v(501, "5.5.4", "syntax: DATA takes no argument"))
            return True
        if self._bdat is not None:
            self.reply(_v(503, "5.5.1", "DATA cannot follow BDAT in one transaction"))
            return True
        refusal = self._message_refusal()
        if refusal is not None:
            self.reply(refusal)
            return True
        limit = self.handler.data_limit(s)
        self.reply(_v(354, "", "send the message; end with <CRLF>.<CRLF>"))
        try:
            got = await self._read_data(limit)
        except SpoolFailed:
            self.reply(SPOOL_FAILED)
            self._reset()
            return True
        if got is None:
            return False
        content, size = got
        v = await self.handler.on_message(s, content, size)
        self.reply(v)
        self._reset_after_message()
        return True

    def _reset_after_message(self) -> None:
        s = self.session
        s.in_transaction = False
        s.rcpt_ok = s.rcpt_tried = 0
        s.params = {}
        self._drop_bdat()
        self._bdat_refused = None

    def _message_refusal(self) -> Verdict | None:
        """Why a message (DATA or BDAT) cannot start now; None when it can."""
        s = self.session
        if not s.in_transaction:
            return SEQ_MAIL
        if not s.rcpt_ok:
            return NO_VALID_RCPT if s.rcpt_tried else SEQ_RCPT
        return None

    async def cmd_rset(self, arg: str) -> bool:
        self._reset()
        self.reply(OK)
        return True

    async def cmd_noop(self, arg: str) -> bool:
        self.reply(OK)
        return True

    async def cmd_quit(self, arg: str) -> bool:
        self.reply(BYE)
        return False

    async def cmd_vrfy(self, arg: str) -> bool:
        if not arg:   # RFC 5321 4.1.1.6: "VRFY" SP String
            self.reply(_v(501, "5.5.4", "syntax: VRFY user-or-address"))
            return True
        self.reply(_v(252, "2.5.0", "cannot verify addresses here; send the mail and "
                                    "the reply will tell"))
        return True

    async def cmd_expn(self, arg: str) -> bool:
        self.reply(_v(502, "5.5.1", "EXPN is not offered here"))
        return True

    async def cmd_help(self, arg: str) -> bool:
        self.reply(_v(214, "2.0.0", "commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT "
                                    "RSET NOOP VRFY QUIT"))
        return True


_COMMANDS = {
    "EHLO": SmtpProtocol.cmd_ehlo, "HELO": SmtpProtocol.cmd_helo,
    "STARTTLS": SmtpProtocol.cmd_starttls, "AUTH": SmtpProtocol.cmd_auth,
    "MAIL": SmtpProtocol.cmd_mail, "RCPT": SmtpProtocol.cmd_rcpt,
    "DATA": SmtpProtocol.cmd_data, "BDAT": SmtpProtocol.cmd_bdat,
    "RSET": SmtpProtocol.cmd_rset, "NOOP": SmtpProtocol.cmd_noop,
    "QUIT": SmtpProtocol.cmd_quit, "VRFY": SmtpProtocol.cmd_vrfy,
    "EXPN": SmtpProtocol.cmd_expn, "HELP": SmtpProtocol.cmd_help,
}
