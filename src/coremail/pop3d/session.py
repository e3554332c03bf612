"""The POP3 protocol engine: one `Pop3Session` per connection, an
asyncio.Protocol with its own line buffer (so STLS can drop plaintext that was
pipelined behind it, and the hot RETR path costs no extra task or stream
layer). It parses, checks the state and replies; the maildrop (maildrop.py),
login (auth.py) and byte handling (wire.py) decide everything else.

States (RFC 1939): AUTHORIZATION -> TRANSACTION -> UPDATE (only via QUIT).
Deletions are applied only in UPDATE, so a dropped connection, an idle
autologout or a server shutdown deletes nothing.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from typing import Awaitable, Protocol

from ..config import Settings
from ..obs.log import Log
from ..proto.listen import SessionTracker
from ..proto.stream import StreamSession
from ..store.blobs import new_id
from ..store.interfaces import BlobMissing, StorageFull, Store
from ..services.login import Authenticator, LoginBusy, SaslError, decode_plain, plaintext_login_allowed
from ..services.views import Views
from .maildrop import Entry, LeaseLock, LockBusy, Maildrop, MaildropLock, SizeCache
from .parser import ParseError, parse_command, parse_number
from .wire import StreamEncoder, encode, normalise, stuff, top

AUTHORIZATION, TRANSACTION, DONE = "authorization", "transaction", "done"
AUTH_VERBS = frozenset({"USER", "PASS", "AUTH", "STLS", "CAPA", "QUIT", "APOP"})
TRANS_VERBS = frozenset({"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "QUIT", "TOP",
                         "UIDL", "CAPA"})
INLINE_MAX = 256 * 1024   # messages up to this size are read and sent in one piece
CHUNK = 256 * 1024        # bigger ones stream in chunks of this size
RETR_LOG_BATCH = 200      # retrievals per pop3.retr log line
TOP_PROBE = 1 << 20       # TOP reads this much before falling back to the whole file
READ_HIGH = 64 * 1024     # pause reading when a client pipelines more than this
TOO_LONG = b""            # sentinel: the line was over the limit and was dropped


class Pop3Host(Protocol):
    """What a session needs of its service (service.Pop3Service), spelled out
    here so that the service imports the session and never the reverse."""

    store: Store
    log: Log
    tracker: SessionTracker
    auth: Authenticator
    sizes: SizeCache
    views: Views
    lock_wait: float

    @property
    def settings(self) -> Settings: ...
    def maildrop_lock(self, user_id: int) -> MaildropLock | LeaseLock: ...
    def max_line(self) -> int: ...
    def idle_timeout(self) -> float: ...
    def tls_available(self) -> bool: ...
    def tls_context(self) -> ssl.SSLContext: ...


class Pop3Session(StreamSession):
    def __init__(self, service: Pop3Host, listener: str, implicit_tls: bool):
        super().__init__(service, listener, implicit_tls)
        self.sid = new_id()
        self.state = AUTHORIZATION
        self.login_name: str | None = None
        self.drop: Maildrop | None = None
        self.lock: MaildropLock | LeaseLock | None = None
        self.retrieved = self.deleted = self.bytes_out = self.bad = 0
        self._retr_log: list[str] = []   # "number:qid" not yet logged
        self.outcome = "dropped"
        self.busy = self.closing = False
        self._buf = bytearray()
        self._discarding = False
        self._idle: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ transport events
    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._wake()
        if len(self._buf) > READ_HIGH + self.svc.max_line():
            self._hold_reading("input")

    def resume_writing(self) -> None:
        self.last = self.loop.time()  # a client reading a long RETR is not idle
        super().resume_writing()

    async def _readline(self) -> bytes | None:
        """The next line (CRLF included), TOO_LONG for a dropped over-long
        line, None when the client has gone."""
        buf = self._buf
        while True:
            i = buf.find(b"\n")
            if i >= 0:
                if self._discarding or i >= self.svc.max_line():
                    line, self._discarding = TOO_LONG, False
                else:
                    line = bytes(buf[:i + 1])
                del buf[:i + 1]
                if len(buf) < READ_HIGH:
                    self._release_reading("input")
                self.last = self.loop.time()
                return line
            if len(buf) >= self.svc.max_line():
                buf.clear()
                self._discarding = True
                self._release_reading("input")
            if self._eof or self._lost:
                return None
            await self._wait()

    # ------------------------------------------------------------ replies
    def _send(self, data: bytes) -> None:
        if not self._lost:
            self.transport.write(data)

    def _ok(self, text: str = "") -> None:
        self._send(b"+OK " + text.encode() + b"\r\n" if text else b"+OK\r\n")

    def _err(self, text: str) -> None:
        self._send(b"-ERR " + text.encode() + b"\r\n")

    def _multiline(self, first: str, lines: list[str]) -> None:
        body = "".join(f"{ln}\r\n" for ln in lines)
        self._send(f"+OK {first}\r\n{body}.\r\n".encode())

    # ------------------------------------------------------------ the session
    async def _run(self, over_limit: bool) -> None:
        try:
            if over_limit:
                self.outcome = "refused"
                self._err("[SYS/TEMP] too many connections from your address; try again later")
                return
            self._ok("coremail POP3 server ready")
            self._arm_idle(self.svc.idle_timeout())
            await self._loop()
        except (ConnectionError, OSError):
            pass
        except Exception as e:  # a bug must cost one session, with a trace in the log
            self.outcome = "error"
            self.svc.log.error("pop3.session_error", sid=self.sid, error=repr(e))
            self._err("[SYS/TEMP] internal error; please try again")
        finally:
            self._finish()

    async def _loop(self) -> None:
        max_bad = self.svc.settings.limits.max_unknown_commands
        while True:
            line = await self._readline()
            if line is None:
                return
            self.busy = True
            try:
                pending = self._dispatch(line)
                if pending is not None:
                    try:
                        await pending
                    except ParseError as e:
                        self._err(str(e))
            finally:
                self.busy = False
            if self._write_paused:
                await self._drain()
            if self.state == DONE:
                return
            if self.closing:
                self._say_shutdown()
                return
            if self.bad >= max_bad:
                self.outcome = "bad-commands"
                self._err("too many unrecognised commands; closing the connection")
                return

    def _dispatch(self, line: bytes) -> Awaitable | None:
        if line == TOO_LONG:
            self.bad += 1
            self._err("command line too long")
            return None
        try:
            cmd = parse_command(line)
            allowed = TRANS_VERBS if self.state == TRANSACTION else AUTH_VERBS
            if cmd.verb not in allowed:
                self._err(f"{cmd.verb} is not valid in the {self.state} state")
                return None
            return getattr(self, "_cmd_" + cmd.verb)(cmd.args)
        except ParseError as e:
            self.bad += 1
            self._err(str(e))
            return None

    def _finish(self) -> None:
        self._log_retrieved()
        if self._idle is not None:
            self._idle.cancel()
        self._release()
        self.svc.tracker.remove(self, self.ip)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.svc.log.info("pop3.session", sid=self.sid, ip=self.ip, listener=self.listener,
                          user=self.user.address if self.user else self.login_name,
                          tls="yes" if self.tls else "no", retrieved=self.retrieved,
                          deleted=self.deleted, bytes=self.bytes_out, outcome=self.outcome,
                          secs=f"{time.monotonic() - self.started:.3f}")

    def _release(self) -> None:
        self.svc.views.release(self)
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # ------------------------------------------------------------ stop and idle
    def _say_shutdown(self) -> None:
        self.outcome = "shutdown"
        self._err("[SYS/TEMP] server shutting down; no messages were deleted, please reconnect")

    def shutdown(self) -> None:
        """Graceful stop: the session ends after the command it is running,
        without applying any DELE (a QUIT already in progress completes)."""
        self.closing = True
        if not self.busy and not self._lost:
            self._say_shutdown()
            self.transport.close()

    def _arm_idle(self, delay: float) -> None:
        self._idle = self.loop.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        limit = self.svc.idle_timeout()
        quiet = self.loop.time() - self.last
        if quiet < limit:
            self._arm_idle(limit - quiet)
            return
        self.outcome = "idle-timeout"
        if not self.busy:
            self._err("autologout: idle for too long; no messages were deleted")
            self.transport.close()
        else:
            self.transport.abort()  # stuck writing to a client that reads nothing

    # ------------------------------------------------------------ authorization
    def _plaintext_ok(self) -> bool:
        return plaintext_login_allowed(tls=self.tls, ip=self.ip,
                                       allow_plaintext=self.svc.settings.policy.allow_plaintext_auth)

    def _refuse_plaintext(self) -> None:
        self._err("[AUTH] password logins need an encrypted connection here; use STLS first")

    def _cmd_CAPA(self, args) -> None:
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state == AUTHORIZATION:
            if self._plaintext_ok():
                caps += ["USER", "SASL PLAIN"]
            if not self.tls and self.svc.tls_available():
                caps.append("STLS")
        caps.append("IMPLEMENTATION coremail")
        self._multiline("capability list follows", caps)

    def _cmd_USER(self, args) -> None:
        if not self._plaintext_ok():
            return self._refuse_plaintext()
        self.login_name = args[0]
        self._ok("send PASS")

    def _cmd_PASS(self, args):
        if self.login_name is None:
            self._err("send USER first")
            return None
        if not self._plaintext_ok():
            return self._refuse_plaintext()
        return self._login(self.login_name, args[0])

    def _cmd_APOP(self, args) -> None:
        self._err("APOP is not supported; use USER/PASS or AUTH PLAIN")

    def _cmd_AUTH(self, args):
        if not args:
            # Pre-RFC 5034 clients send a bare AUTH to list the mechanisms.
            self._multiline("SASL mechanisms follow", ["PLAIN"])
            return None
        if args[0].upper() != "PLAIN":
            self._err(f"SASL mechanism {args[0]} is not supported; use PLAIN")
            return None
        if not self._plaintext_ok():
            return self._refuse_plaintext()
        return self._auth_plain(args[1] if len(args) > 1 else None)

    async def _auth_plain(self, initial: str | None) -> None:
        if initial is None:
            self._send(b"+ \r\n")
            line = await self._readline()
            if line is None:
                raise ConnectionResetError("client went away during AUTH")
            if line == TOO_LONG:
                self._err("[AUTH] response too long")
                return
            initial = line.rstrip(b"\r\n").decode("ascii", "replace")
            if initial == "*":
                self._err("authentication cancelled")
                return
        elif initial == "=":
            initial = ""
        try:
            login, password = decode_plain(initial)
        except SaslError as e:
            self._err(f"[AUTH] {e}")
            return
        await self._login(login, password)

    async def _login(self, login: str, password: str) -> None:
        self.login_name = login
        s = self.svc.settings
        try:
            user, wait = await self.svc.auth.login_async(
                login, password, self.ip, domain=s.server.domain,
                limit=s.limits.auth_failures, window=float(s.limits.auth_window))
        except LoginBusy:
            self.login_name = None
            self._err("[SYS/TEMP] too many logins are being checked right now; "
                      "try again in a moment")
            return
        if wait:
            self.outcome = "throttled"
            mins = max(1, round(wait / 60))
            self._err(f"[LOGIN-DELAY] too many failed logins from your address; "
                      f"try again in {mins} minute{'s' if mins > 1 else ''}")
            return
        if user is None:
            self.login_name = None
            self._err("[AUTH] wrong user name or password")
            return
        lock = self.svc.maildrop_lock(user.id)
        # A client that reconnects right after QUIT, or two polls racing,
        # should not fail: wait a moment for the other session to end.
        deadline = self.loop.time() + self.svc.lock_wait
        while True:
            try:
                if lock.in_thread:      # a lease: a store write
                    await asyncio.to_thread(lock.acquire)
                else:                   # flock(LOCK_NB): never blocks
                    lock.acquire()
                break
            except LockBusy:
                if self.loop.time() >= deadline or self.closing or self._lost:
                    self.login_name = None
                    self._err("[IN-USE] the mailbox is open in another POP3 session; "
                              "try again later")
                    return
                await asyncio.sleep(0.05)
        try:
            drop = await asyncio.to_thread(Maildrop.load, self.svc.store, user.id, self.svc.sizes)
        except Exception:
            lock.release()
            raise
        self.user, self.lock, self.drop, self.state = user, lock, drop, TRANSACTION
        if drop.folder_id:
            self.svc.views.hold(self, drop.folder_id, drop.modseq)
        count, size = drop.stat()
        self._ok(f"logged in as {user.address}: {count} messages ({size} octets)")

    def _cmd_STLS(self, args):
        if self.tls:
            self._err("already using TLS")
            return None
        if not self.svc.tls_available():
            self._err("[SYS/PERM] TLS is not available on this server")
            return None
        return self._start_tls()

    async def _start_tls(self) -> None:
        self._ok("begin TLS negotiation")
        # RFC 2595: anything the client pipelined after STLS was sent in clear
        # and must not be executed as if it came over TLS.
        self._buf.clear()
        try:
            transport = await self.loop.start_tls(self.transport, self, self.svc.tls_context(),
                                                  server_side=True, ssl_handshake_timeout=30)
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            self.outcome = "tls-failed"
            self.svc.log.info("pop3.tls_failed", sid=self.sid, ip=self.ip, error=repr(e))
            self.transport.abort()
            raise ConnectionResetError("TLS handshake failed") from None
        self.transport, self.tls, self.login_name = transport, True, None

    def _cmd_QUIT(self, args):
        if self.state == AUTHORIZATION:
            self.outcome, self.state = "quit", DONE
            self._ok("coremail POP3 server signing off")
            return None
        return self._update()

    async def _update(self) -> None:
        """The UPDATE state: apply the DELEs, then say goodbye."""
        ids = self.drop.marked()
        self.state, self.outcome = DONE, "quit"
        try:
            removed = await asyncio.to_thread(Maildrop.commit, self.svc.store, self.user.id, ids)
        except Exception as e:
            self.outcome = "update-failed"
            self.svc.log.error("pop3.update_failed", sid=self.sid, error=repr(e))
            if isinstance(e, StorageFull):   # the words of a full disk, not a bare failure
                self._err(f"[SYS/TEMP] {e.text}: the deleted messages stay in the mailbox")
            else:
                self._err("[SYS/TEMP] some deleted messages could not be removed")
            return
        self.deleted = removed
        self._release()  # before the goodbye: the client may reconnect at once
        self._ok(f"coremail POP3 server signing off ({removed} messages deleted)")

    # ------------------------------------------------------------ transaction
    def _entry(self, arg: str) -> Entry | None:
        e = self.drop.get(parse_number(arg))
        if e is None:
            self._err("no such message")
        return e

    def _cmd_STAT(self, args) -> None:
        count, size = self.drop.stat()
        self._ok(f"{count} {size}")

    def _cmd_LIST(self, args) -> None:
        if args:
            e = self._entry(args[0])
            if e is not None:
                self._ok(f"{e.number} {e.size}")
            return
        count, size = self.drop.stat()
        self._multiline(f"{count} messages ({size} octets)",
                        [f"{e.number} {e.size}" for e in self.drop.live()])

    def _cmd_UIDL(self, args) -> None:
        if args:
            e = self._entry(args[0])
            if e is not None:
                self._ok(f"{e.number} {e.uidl}")
            return
        self._multiline("unique-id listing follows",
                        [f"{e.number} {e.uidl}" for e in self.drop.live()])

    def _cmd_DELE(self, args) -> None:
        e = self._entry(args[0])
        if e is not None:
            e.deleted = True
            self._ok(f"message {e.number} deleted")

    def _cmd_RSET(self, args) -> None:
        self.drop.reset()
        count, size = self.drop.stat()
        self._ok(f"maildrop has {count} messages ({size} octets)")

    def _cmd_NOOP(self, args) -> None:
        self._ok()

    def _gone(self, e: Entry) -> None:
        self._err(f"message {e.number} was removed by another client")

    def _cmd_RETR(self, args):
        e = self._entry(args[0])
        if e is None:
            return None
        if e.stored_size > INLINE_MAX:
            return self._retr_stream(e)
        try:
            data = self.svc.store.blobs.read(e.blob_id)
        except BlobMissing:
            return self._gone(e)
        self._send(b"+OK %d octets\r\n%s.\r\n" % (e.size, encode(data, e.clean)))
        self._retrieved(e)
        return None

    def _retrieved(self, e: Entry) -> None:
        self.retrieved += 1
        self.bytes_out += e.size
        # A message that came by SMTP has its queue id as blob id: one grep
        # follows it from the SMTP 250 to the pop3.retr line. One line per
        # RETR_LOG_BATCH retrievals (and at the end), not per message: at
        # thousands of RETRs a second a line each cost a tenth of a core.
        self._retr_log.append(f"{e.number}:{e.blob_id}")
        if len(self._retr_log) >= RETR_LOG_BATCH:
            self._log_retrieved()

    def _log_retrieved(self) -> None:
        if self._retr_log and self.user is not None:
            self.svc.log.info("pop3.retr", sid=self.sid, user=self.user.address,
                              count=len(self._retr_log), msgs=",".join(self._retr_log))
        self._retr_log = []

    async def _retr_stream(self, e: Entry) -> None:
        try:
            f = self.svc.store.blobs.open(e.blob_id)
        except BlobMissing:
            return self._gone(e)
        enc = StreamEncoder(e.clean)
        try:
            self._send(b"+OK %d octets\r\n" % e.size)
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                out = enc.feed(chunk)
                if out:
                    self._send(out)
                self.last = self.loop.time()
                if self._write_paused:
                    await self._drain()
            self._send(enc.finish() + b".\r\n")
        finally:
            f.close()
        self._retrieved(e)

    def _cmd_TOP(self, args):
        e = self._entry(args[0])
        if e is None:
            return None
        lines = parse_number(args[1])
        if e.stored_size <= INLINE_MAX:
            try:
                data = self.svc.store.blobs.read(e.blob_id)
            except BlobMissing:
                return self._gone(e)
            self._send_top(data if e.clean else normalise(data), lines)
            return None
        return self._top_large(e, lines)

    def _send_top(self, normalised: bytes, lines: int) -> None:
        self._send(b"+OK top of message follows\r\n%s.\r\n" % stuff(top(normalised, lines)))

    async def _top_large(self, e: Entry, lines: int) -> None:
        def head() -> bytes | None:
            with self.svc.store.blobs.open(e.blob_id) as f:
                probe = f.read(TOP_PROBE)
                if len(probe) < TOP_PROBE:  # that was the whole message
                    return top(normalise(probe), lines)
                part = normalise(probe[:probe.rfind(b"\n") + 1])
                got = top(part, lines)
                if len(got) < len(part):  # enough lines within the probe
                    return got
                f.seek(0)
                return top(normalise(f.read()), lines)
        try:
            data = await asyncio.to_thread(head)
        except BlobMissing:
            return self._gone(e)
        self._send_top(data, lines)
