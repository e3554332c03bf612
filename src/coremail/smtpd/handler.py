"""The hooks behind the SMTP engine for the MX and submission listeners:
they turn engine events into pipeline questions (run off the event loop,
since the store is synchronous), hand accepted messages to the group
committer, and write one log line per transaction."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from ..config import Settings
from ..obs.log import Log
from ..pipeline.envelope import Client, Envelope
from ..pipeline.rules import Pipeline
from ..pipeline.verdict import Verdict
from ..services.accounts import Accounts
from ..services.login import FailureThrottle
from ..store.blobs import new_id
from .delivery import Committer, Job, trace_headers
from .engine import EngineConfig, Session
from .parser import Path


@dataclass
class SessionState:
    client: Client
    log: Log
    env: Envelope | None = None
    started: float = 0.0
    auth_tries: int = 0
    messages: int = 0


class SmtpHandler:
    def __init__(self, *, store: Any, settings: Callable[[], Settings], log: Log,
                 tls: Any, committer: Committer, tracker: Any, throttle: FailureThrottle):
        self.store = store
        self.settings = settings
        self.log = log
        self.tls = tls
        self.committer = committer
        self.tracker = tracker
        self.pipeline = Pipeline(store, settings)
        self.io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="smtp-io")
        self.auth_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="smtp-auth")
        self.throttle = throttle   # shared by the workers (files under DIR/run)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    # ------------------------------------------------------------ session
    def engine_config(self, session: Session) -> EngineConfig:
        s = self.settings()
        return EngineConfig(
            hostname=s.server.hostname, size_limit=int(s.limits.max_message_size),
            max_line_length=s.limits.max_line_length,
            max_unknown_commands=s.limits.max_unknown_commands,
            idle_timeout=float(s.limits.idle_timeout), data_timeout=float(s.limits.data_timeout),
            tls=self.tls if session.listener == "submission" or session.listener == "smtp"
            else None)

    async def on_connect(self, session: Session) -> Verdict | None:
        log = self.log.bind(sid=session.sid)
        session.state = SessionState(Client(session.ip, session.listener, tls=session.tls,
                                            sid=session.sid), log)
        limit = self.settings().limits.max_connections_per_ip
        log.debug("smtp.connect", ip=session.ip, listener=session.listener, tls=session.tls)
        if self.tracker.over_limit(session.ip, limit):
            log.info("smtp.refused", ip=session.ip, reason="per-ip connection limit",
                     connections=self.tracker.count(session.ip))
            return Verdict(421, "4.7.0", f"too many connections from your address (limit "
                                         f"{limit}); try again later")
        return None

    def on_helo(self, session: Session, name: str) -> None:
        st: SessionState = session.state
        st.client.helo = name
        st.client.tls = session.tls
        if not session.authenticated:
            st.client.user = None

    def auth_blocked(self, session: Session) -> Verdict | None:
        s = self.settings()
        window = float(s.limits.auth_window)
        wait = self.throttle.blocked_for(session.ip, s.limits.auth_failures, window)
        if not wait:
            return None
        st: SessionState = session.state
        st.auth_tries += 1
        minutes = max(1, int(wait // 60) + 1)
        if st.auth_tries > 2:
            return Verdict(421, "4.7.0", "too many failed logins from your address; "
                                         "closing the connection")
        return Verdict(454, "4.7.0", f"too many failed logins from your address; try again "
                                     f"in about {minutes} minute(s)")

    async def on_auth(self, session: Session, login: str, password: str) -> Verdict:
        st: SessionState = session.state
        s = self.settings()
        accounts = Accounts(self.store, s.server.domain)
        user = await asyncio.get_running_loop().run_in_executor(
            self.auth_pool, accounts.authenticate, login, password)
        if user is None:
            self.throttle.record_failure(session.ip, float(s.limits.auth_window))
            st.log.info("smtp.auth_failed", ip=session.ip, login=login)
            return Verdict(535, "5.7.8", "authentication failed: wrong login or password")
        st.client.user = user
        st.log.info("smtp.auth", ip=session.ip, user=user.address)
        return Verdict(235, "2.7.0", "authentication successful")

    # -------------------------------------------------------- transaction
    async def on_mail(self, session: Session, path: Path) -> Verdict:
        st: SessionState = session.state
        st.client.tls = session.tls
        p = session.params
        env = Envelope(declared_size=p.get("size", 0), smtputf8=bool(p.get("smtputf8")),
                       body=p.get("body", "7BIT"), sender_raw=path.mailbox)
        st.started = time.monotonic()
        if st.client.user is None and session.listener == "smtp":
            v, addr = self.pipeline.sender(st.client, path.mailbox,
                                           declared_size=env.declared_size,
                                           smtputf8=env.smtputf8)
        else:
            v, addr = await self._run(lambda: self.pipeline.sender(
                st.client, path.mailbox, declared_size=env.declared_size,
                smtputf8=env.smtputf8))
        if v.ok:
            env.sender = addr
            st.env = env
        else:
            st.log.info("smtp.sender_refused", ip=session.ip, sender=path.mailbox,
                        reply=str(v))
        return v

    async def on_rcpt(self, session: Session, path: Path) -> Verdict:
        st: SessionState = session.state
        env = st.env
        assert env is not None
        # Cached answers come straight back; anything needing the store goes to a thread.
        got = self.pipeline.recipient(st.client, env, path.mailbox, path.route, store_ok=False)
        if got is None:
            got = await self._run(self.pipeline.recipient, st.client, env, path.mailbox,
                                  path.route)
        v, rcpt = got
        env.results.append((path.mailbox, f"{v.code}/{v.enhanced}"))
        if rcpt is not None:
            env.recipients.append(rcpt)
        return v

    def data_limit(self, session: Session) -> int:
        return self.pipeline.size_limit()

    def too_big(self, session: Session, size: int) -> Verdict:
        return self.pipeline.oversize(size, self.pipeline.size_limit())

    async def on_message(self, session: Session, content: bytes, size: int) -> Verdict:
        st: SessionState = session.state
        env = st.env
        assert env is not None
        limit = self.pipeline.size_limit()
        qid = ""
        if size > limit:
            v = self.pipeline.oversize(size, limit)
        else:
            v = self.pipeline.message(st.client, env, content, size)
        if v.ok:
            qid = new_id()
            users: dict[int, Any] = {}
            remote: dict[str, None] = {}
            for r in env.recipients:
                for u in r.users:
                    users.setdefault(u.id, u)
                for a in r.remote:
                    remote.setdefault(a, None)
            s = self.settings()
            head = trace_headers(
                qid=qid, sender=env.sender_text, helo=st.client.helo, ip=session.ip,
                hostname=s.server.hostname, tls=session.tls, auth=session.authenticated,
                esmtp=session.esmtp, smtputf8=env.smtputf8,
                recipients=[str(r.address) for r in env.recipients])
            v = await self.committer.submit(Job(qid, head, content, env.sender_text,
                                                list(users.values()), list(remote)))
        self._log_transaction(session, st, env, v, qid, size)
        st.env = None
        st.messages += 1
        return v

    def on_reset(self, session: Session) -> None:
        st: SessionState = session.state
        if st is not None and st.env is not None:
            if st.env.results:
                self._log_transaction(session, st, st.env, None, "", 0)
            st.env = None

    def _log_transaction(self, session: Session, st: SessionState, env: Envelope,
                         v: Verdict | None, qid: str, size: int) -> None:
        ms = int((time.monotonic() - st.started) * 1000) if st.started else 0
        st.log.info("smtp.message" if v is not None else "smtp.abandoned",
                    qid=qid or None, ip=session.ip, helo=st.client.helo or None,
                    user=st.client.user.address if st.client.user else None,
                    sender=f"<{env.sender_text}>",
                    rcpts=",".join(f"<{raw}>={res}" for raw, res in env.results),
                    size=size, tls="yes" if session.tls else "no",
                    result=f"{v.code}/{v.enhanced}" if v is not None else "none",
                    reason=None if v is None or v.ok else v.text, ms=ms)

    def on_close(self, session: Session, reason: str) -> None:
        st: SessionState | None = session.state
        if st is not None:
            st.log.debug("smtp.close", ip=session.ip, reason=reason, messages=st.messages)

    def on_error(self, session: Session, exc: BaseException) -> None:
        self.log.error("smtp.internal_error", sid=session.sid, ip=session.ip,
                       error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self.io.shutdown(wait=False)
        self.auth_pool.shutdown(wait=False)
