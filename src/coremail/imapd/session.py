"""The IMAP connection: one `ImapSession` (an asyncio.Protocol) per client.

Owns the state machine of RFC 3501 (not authenticated -> authenticated ->
selected -> logout), the command loop over framing.CommandFramer and
parser.parse_command, login (LOGIN, AUTHENTICATE PLAIN with SASL-IR, the
shared throttle in services/login.py), STARTTLS, IDLE, and when untagged
updates may be sent. Mailbox and message commands live in folders.py and
selected.py; they raise `No`/`Bad` (responses.py) and return the text of the
tagged OK. The service's command table (commands.py) maps a command to its
handler. A Protocol with its own buffer rather than streams keeps an idle
connection a few kilobytes.
"""
from __future__ import annotations

import asyncio
import base64
import re
import ssl
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..config import Settings
from ..obs.log import Log
from ..proto.listen import SessionTracker
from ..proto.stream import StreamSession
from ..services.login import Authenticator, LoginBusy, SaslError, decode_plain, plaintext_login_allowed
from ..store.blobs import new_id
from ..store.interfaces import Store, StoreError
from .framing import CONTINUATION, CommandFramer, ContinuationNeeded, FramedCommand, FramingError, RawLine
from .parser import ParseError, parse_command
from .responses import AUTH, LOGOUT, NOTAUTH, SELECTED, Bad, No, refusal

if TYPE_CHECKING:
    from .mailbox import Mailbox

MIN_IDLE_TIMEOUT = 1800.0  # RFC 3501 5.4: at least 30 minutes
PRE_AUTH_LITERAL = 64 * 1024
READ_HIGH = 256 * 1024     # unconsumed input past this (and a line): stop reading
MAX_BAD_IN_A_ROW = 100
# Dovecot's line limit: an ID command with RFC 2971's maxima (30 pairs of
# 30 + 1024 octets) before login, any command after it
WIDE_LINE = 64 * 1024
_ID_HEAD = re.compile(rb"[^ \r\n]{1,64} ID[ (]", re.I)
# commands after which EXPUNGE responses may not be sent (RFC 3501 7.4.1)
_NO_EXPUNGE = frozenset(("FETCH", "STORE", "SEARCH", "SORT", "THREAD"))

CAPS_BASE = ("IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MULTIAPPEND BINARY MOVE SPECIAL-USE "
             "CREATE-SPECIAL-USE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS CONDSTORE ESEARCH "
             "QRESYNC QUOTA QUOTA=RES-STORAGE SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES")


class ImapHost(Protocol):
    """What a session needs of its service (service.ImapService), spelled out
    here so that the service imports the session and never the reverse."""

    store: Store
    log: Log
    tracker: SessionTracker
    auth: Authenticator
    watcher: Any    # service.IdleWatcher: add(session), discard(session)
    views: Any      # services.views.Views: hold(session, folder_id, modseq), release(session)
    commands: Any   # commands.CommandTable: lookup(name, state) -> handler | None

    @property
    def settings(self) -> Settings: ...
    def tls_available(self) -> bool: ...
    def tls_context(self) -> ssl.SSLContext: ...


class ImapSession(StreamSession):
    def __init__(self, service: ImapHost, listener: str, implicit_tls: bool) -> None:
        super().__init__(service, listener, implicit_tls)
        self.store = service.store
        self.log = service.log
        self.sid = new_id()
        self.state = NOTAUTH
        self._mailbox: Mailbox | None = None
        self.condstore = False
        self.qresync = False   # ENABLE QRESYNC: VANISHED instead of EXPUNGE (RFC 7162)
        self.idling = False
        self.framer = self._framer(max(service.settings.limits.max_line_length, 8192))
        self.synced = 0.0
        self._poked = False
        self._timer: asyncio.TimerHandle | None = None
        self.bad = 0
        self.commands = 0
        self._out: list[bytes] = []
        self._out_size = 0

    @staticmethod
    def _framer(max_line: int) -> CommandFramer:
        return CommandFramer(max_line=max_line, max_literal=PRE_AUTH_LITERAL,
                             wide_line=WIDE_LINE, wide_head=_ID_HEAD)

    # The selected mailbox. While one is selected, the session holds its view
    # (services.views): no blob of a message it has not yet been told is
    # expunged may be purged (RFC 2180 4.1).
    @property
    def mailbox(self) -> Mailbox | None:
        return self._mailbox

    @mailbox.setter
    def mailbox(self, mb: Mailbox | None) -> None:
        self._mailbox = mb
        if mb is None:
            self.svc.views.release(self)
        else:
            self.svc.views.hold(self, mb.folder_id, mb.highestmodseq)

    # ------------------------------------------------------------ transport events
    def data_received(self, data: bytes) -> None:
        self.framer.receive(data)
        self.last = self.loop.time()
        if self.framer.pending > READ_HIGH + self.framer.max_line:
            self._hold_reading("input")   # released when the framer has used what it has
        self._wake()

    def poke(self) -> None:
        """The watcher saw this session's folder change (IDLE)."""
        self._poked = True
        self._wake()

    # ------------------------------------------------------------ output
    def send(self, data: bytes) -> None:
        """Queue output; flush() writes it in one piece (one syscall per reply)."""
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= 262144:
            self.flush()

    def flush(self) -> None:
        if self._out:
            if not self._lost:
                self.transport.write(b"".join(self._out) if len(self._out) > 1 else self._out[0])
            self._out.clear()
            self._out_size = 0

    async def maybe_drain(self) -> None:
        """Between messages of a FETCH: write out only when a lot is queued."""
        if self._out_size >= 65536 or self._write_paused:
            await self.drain()

    async def drain(self) -> None:
        self.flush()
        await self._drain()

    async def run(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command; with a mailbox selected the client
        learns its HIGHESTMODSEQ now (RFC 7162 3.1)."""
        if not self.condstore:
            self.condstore = True
            if self.mailbox is not None:
                self.send(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % self.mailbox.highestmodseq)

    def capabilities(self) -> str:
        caps = CAPS_BASE
        if self.state == NOTAUTH:
            if not self.tls and self.svc.tls_available():
                caps += " STARTTLS"
            caps += " AUTH=PLAIN" if self.plaintext_ok() else " LOGINDISABLED"
        return caps

    def plaintext_ok(self) -> bool:
        return plaintext_login_allowed(tls=self.tls, ip=self.ip,
                                       allow_plaintext=self.svc.settings.policy.allow_plaintext_auth)

    # ------------------------------------------------------------ the loop
    async def _run(self, over_limit: bool) -> None:
        try:
            if over_limit:
                self.send(b"* BYE [UNAVAILABLE] Too many connections from your address\r\n")
                return
            self.send(f"* OK [CAPABILITY {self.capabilities()}] coremail IMAP ready\r\n".encode())
            self._arm_timer()
            await self._loop()
        except (ConnectionError, OSError):
            pass
        except Exception as e:  # a bug costs one session, with a trace in the log
            self.log.error("imap.session_error", sid=self.sid, error=repr(e))
            self.send(b"* BYE [SERVERBUG] Internal error; please reconnect\r\n")
        finally:
            self._finish()

    async def _next(self):
        while True:
            ev = self.framer.next_event()
            if ev is not None or self._lost or self._eof:
                return ev
            self.flush()
            self._release_reading("input")
            await self._wait()

    async def _loop(self) -> None:
        while self.state != LOGOUT:
            ev = await self._next()
            if ev is None:
                return
            if isinstance(ev, FramedCommand):
                await self._command(ev.raw)
            elif isinstance(ev, ContinuationNeeded):
                self.send(CONTINUATION)
            elif isinstance(ev, FramingError):
                self.send(ev.response())
                self._count_bad()
            elif isinstance(ev, RawLine):
                self.send(b"* BAD Unexpected line\r\n")
            await self.drain()

    def _count_bad(self) -> None:
        self.bad += 1
        if self.bad >= MAX_BAD_IN_A_ROW:
            self.send(b"* BYE Too many invalid commands\r\n")
            self.state = LOGOUT

    async def _command(self, raw: bytes) -> None:
        try:
            cmd = parse_command(raw)
        except ParseError as e:
            self.send(e.response())
            if e.status == "BAD":
                self._count_bad()
            return
        self.bad = 0
        self.commands += 1
        handler = self.svc.commands.lookup(cmd.name, self.state)
        if handler is None:
            where = {NOTAUTH: "before logging in", AUTH: "without a selected mailbox",
                     SELECTED: "in this state"}.get(self.state, "now")
            self.send(f"{cmd.tag} BAD {cmd.name} is not allowed {where}\r\n".encode())
            return
        try:
            text = await handler(self, cmd)
        except (No, StoreError) as e:
            text = None
            self.send(refusal(cmd.tag, e))
        if text is None:
            return
        if self.mailbox is not None and cmd.name not in ("IDLE", "LOGOUT", "CLOSE", "UNSELECT"):
            await self.sync(allow_expunge=cmd.uid or cmd.name not in _NO_EXPUNGE,
                            force=cmd.name not in _NO_EXPUNGE)
        self.send(f"{cmd.tag} {text}\r\n".encode())

    async def sync(self, allow_expunge: bool = True, force: bool = True) -> None:
        """Tell the client what others changed in the selected mailbox. FETCH,
        STORE and SEARCH look at most once a second, so a client reading mail
        one message at a time pays no query per command."""
        mb = self.mailbox
        if mb is None or not allow_expunge:
            return
        now = self.loop.time()
        if not force and now - self.synced < 1.0:
            return
        self.synced = now
        lines = await self.run(self._refresh, mb)
        if self.mailbox is not mb:
            return
        # told of what changed: the view moves on (and frees expunged blobs)
        self.svc.views.hold(self, mb.folder_id, mb.highestmodseq)
        for line in lines:
            self.send(line)

    def _refresh(self, mb) -> list[bytes]:
        folder = self.store.get_folder_by_id(mb.folder_id)
        if folder is None or folder.uidvalidity != mb.uidvalidity:
            self.mailbox = None
            self.state = AUTH
            return [b"* OK [CLOSED] The selected mailbox was deleted or renamed\r\n"]
        return mb.refresh(self.store, folder, True, self.condstore, self.qresync)

    # ------------------------------------------------------------ timers, end
    def _arm_timer(self) -> None:
        timeout = max(float(self.svc.settings.limits.idle_timeout), MIN_IDLE_TIMEOUT)
        self._timer = self.loop.call_later(timeout / 4, self._check_idle, timeout)

    def _check_idle(self, timeout: float) -> None:
        if self._lost:
            return
        if self.loop.time() - self.last >= timeout:
            self.send(b"* BYE Autologout; idle for too long\r\n")
            self.flush()
            self.state = LOGOUT
            self.transport.close()
            return
        self._timer = self.loop.call_later(timeout / 4, self._check_idle, timeout)

    def shutdown(self) -> None:
        """Graceful stop of the service: say goodbye between commands."""
        if not self._lost:
            self.send(b"* BYE [UNAVAILABLE] Server shutting down; please reconnect\r\n")
            self.flush()
            self.state = LOGOUT
            self.transport.close()

    def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.svc.watcher.discard(self)
        self.svc.views.release(self)
        self.svc.tracker.remove(self, self.ip)
        if self.transport is not None and not self._lost:
            self.flush()
            self.transport.close()
        self.log.info("imap.session", sid=self.sid, ip=self.ip, user=getattr(self.user, "address", None),
                      commands=self.commands, secs=round(time.monotonic() - self.started, 1))

    # ------------------------------------------------------------ any state
    async def cmd_capability(self, cmd) -> str:
        self.send(f"* CAPABILITY {self.capabilities()}\r\n".encode())
        return "OK CAPABILITY completed"

    async def cmd_noop(self, cmd) -> str:
        return f"OK {cmd.name} completed"

    async def cmd_logout(self, cmd) -> str:
        self.send(b"* BYE coremail IMAP server logging out\r\n")
        self.send(f"{cmd.tag} OK LOGOUT completed\r\n".encode())
        self.flush()
        self.state = LOGOUT
        self.mailbox = None
        if not self._lost:
            self.transport.close()
        return None  # type: ignore[return-value]

    async def cmd_id(self, cmd) -> str:
        self.send(b'* ID ("name" "coremail" "vendor" "coremail")\r\n')
        return "OK ID completed"

    async def cmd_enable(self, cmd) -> str:
        enabled = [c for c in dict.fromkeys(cmd.args.capabilities) if c in ("CONDSTORE", "QRESYNC")]
        if enabled:
            self.enable_condstore()   # QRESYNC implies CONDSTORE (RFC 7162 3.2.3)
        if "QRESYNC" in enabled:
            self.qresync = True
        self.send(("* ENABLED" + "".join(" " + c for c in enabled) + "\r\n").encode())
        return "OK ENABLE completed"

    # ------------------------------------------------------------ not authenticated
    async def cmd_starttls(self, cmd) -> str:
        if self.tls:
            raise Bad("TLS is already active")
        if not self.svc.tls_available():
            raise No("TLS is not available on this server")
        self.send(f"{cmd.tag} OK Begin TLS negotiation now\r\n".encode())
        self.flush()
        self.framer = self._framer(self.framer.max_line)
        # plaintext pipelined behind STARTTLS is dropped (the framer above is new)
        transport = await self.loop.start_tls(self.transport, self, self.svc.tls_context(), server_side=True,
                                              ssl_handshake_timeout=30)
        self.transport = transport
        self.tls = True
        return None  # type: ignore[return-value]

    async def cmd_login(self, cmd) -> str:
        if not self.plaintext_ok():
            raise No("Plain-text login needs TLS first (STARTTLS)", "PRIVACYREQUIRED")
        return await self._login(cmd.args.username, cmd.args.password)

    async def cmd_authenticate(self, cmd) -> str:
        args = cmd.args
        if args.mechanism != "PLAIN":
            raise No(f"Mechanism {args.mechanism} is not supported; use PLAIN", "CANNOT")
        if not self.plaintext_ok():
            raise No("PLAIN needs TLS first (STARTTLS)", "PRIVACYREQUIRED")
        if args.initial_response is not None:
            b64 = base64.b64encode(args.initial_response).decode()
        else:
            self.send(b"+ \r\n")
            self.framer.expect_line()
            ev = await self._next()
            if not isinstance(ev, RawLine):
                raise Bad("Authentication exchange failed")
            b64 = ev.line.strip().decode("ascii", "replace")
            if b64 == "*":
                raise Bad("Authentication cancelled")
        try:
            login, password = decode_plain(b64 or "")
        except SaslError as e:
            raise Bad(f"Invalid PLAIN response: {e}") from None
        return await self._login(login, password)

    async def _login(self, login: str, password: str) -> str:
        s = self.svc.settings
        try:
            user, wait = await self.svc.auth.login_async(
                login, password, self.ip, domain=s.server.domain, limit=s.limits.auth_failures,
                window=float(s.limits.auth_window))
        except LoginBusy:
            self.log.info("imap.login_busy", sid=self.sid, ip=self.ip)
            raise No("Too many logins are being checked right now; try again in a moment",
                     "UNAVAILABLE") from None
        if wait:
            self.log.info("imap.login_throttled", sid=self.sid, ip=self.ip)
            raise No(f"Too many failed logins from your address; try again in {int(wait)} s", "UNAVAILABLE")
        if user is None:
            self.log.info("imap.login_failed", sid=self.sid, ip=self.ip, login=login[:100])
            await asyncio.sleep(0.2)
            raise No("Wrong user name or password", "AUTHENTICATIONFAILED")
        self.user = user
        self.state = AUTH
        # a logged-in client may send long lines (UID sets of a big mailbox)
        self.framer.max_line = max(self.framer.max_line, WIDE_LINE)
        self.framer.max_literal = int(s.limits.max_message_size)
        self.framer.max_command = self.framer.max_literal + 16 * self.framer.max_line
        self.log.info("imap.login", sid=self.sid, ip=self.ip, user=user.address)
        return f"OK [CAPABILITY {self.capabilities()}] Logged in"

    # ------------------------------------------------------------ IDLE
    async def cmd_idle(self, cmd) -> str:
        self.send(b"+ idling\r\n")
        self.framer.expect_line()
        self.idling = True
        self.svc.watcher.add(self)
        try:
            await self.sync()
            while True:
                ev = self.framer.next_event()
                if ev is None:
                    if self._lost or self._eof:
                        raise ConnectionResetError("client went away")
                    self.flush()
                    self._release_reading("input")
                    await self._wait()
                    if self._poked:
                        self._poked = False
                        await self.sync()
                        await self.drain()
                    continue
                if isinstance(ev, RawLine) and ev.line.strip().upper() == b"DONE":
                    break
                raise Bad("Expected DONE to end IDLE")
        finally:
            self.idling = False
            self.svc.watcher.discard(self)
        return "OK IDLE terminated"

