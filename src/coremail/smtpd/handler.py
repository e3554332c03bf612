"""The hooks behind the SMTP engine for the MX and submission listeners:
they turn engine events into pipeline questions (answered from caches on
the loop, or on the pipeline's threads), hand accepted messages to the
ingest service, and write one log line per transaction."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import Settings
from ..ingest import Ingest, new_qid
from ..mail.srs import Srs
from ..obs.log import Log
from ..pipeline.decide import Decision
from ..obs.trace import NullTracer, Tracer
from ..pipeline.envelope import Client, Envelope
from ..pipeline.rules import Pipeline
from ..pipeline.verdict import Verdict, stored_verdict
from ..services.login import Authenticator, LoginBusy
from .engine import EngineConfig, Session
from .parser import Path
from .tracing import SmtpTrace


AUTH_BUSY = Verdict(454, "4.7.0", "too many logins are being checked right now; please try "
                               "again in a moment")


@dataclass
class SessionState:
    client: Client
    log: Log
    env: Envelope | None = None
    started: float = 0.0
    auth_tries: int = 0
    messages: int = 0
    unknown: int = 0                # recipients refused as unknown (550 5.1.1)
    harvester: bool = False         # this address is counted already (harvest, logins)
    trace: list = field(default_factory=list)  # refused RCPTs for the trace (smtpd.tracing)


def _virus_status(decision: Decision | None) -> str | None:
    """The virus scan's outcome (Clean, Infected (NAME), Unchecked (why)) for the log."""
    if decision is None:
        return None
    return next((v for k, v in decision.headers if k == "X-Virus-Status"), None)


class SmtpHandler:
    def __init__(self, *, store: Any, settings: Callable[[], Settings], log: Log,
                 tls: Any, ingest: Ingest, tracker: Any, auth: Authenticator,
                 srs: Srs | None = None, tracer: Tracer | None = None):
        self.store = store
        self.settings = settings
        self.log = log
        self.tls = tls
        self.ingest = ingest
        self.tracker = tracker
        self.pipeline = Pipeline(store, settings, log=log, srs=srs)
        self.auth = auth   # throttle shared by the workers, login cache
        self.trace = SmtpTrace(tracer or NullTracer())

    @property
    def throttle(self):
        return self.auth.throttle

    # ------------------------------------------------------------ session
    def engine_config(self, session: Session) -> EngineConfig:
        s = self.settings()
        return EngineConfig(
            hostname=s.server.hostname, size_limit=int(s.limits.max_message_size),
            max_line_length=s.limits.max_line_length,
            max_unknown_commands=s.limits.max_unknown_commands,
            idle_timeout=float(s.limits.idle_timeout), data_timeout=float(s.limits.data_timeout),
            tls=self.tls if session.listener == "submission" or session.listener == "smtp"
            else None, spool=self.store.blobs.spool_file)

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

    # --------------------------------------------------------------- AUTH
    def auth_start(self, session: Session) -> Verdict | None:
        st: SessionState = session.state
        st.client.tls = session.tls
        return self.pipeline.auth_start(st.client)

    def authorization(self, session: Session, authzid: str, login: str) -> Verdict | None:
        return self.pipeline.authorization(authzid, login)

    async def auth_blocked(self, session: Session) -> Verdict | None:
        s = self.settings()
        window = float(s.limits.auth_window)
        wait = await self.auth.blocked_for(session.ip, s.limits.auth_failures, window)
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
        try:
            user, _wait = await self.auth.login_async(
                login, password, session.ip, domain=s.server.domain,
                limit=s.limits.auth_failures, window=float(s.limits.auth_window))
        except LoginBusy:
            st.log.info("smtp.auth_busy", ip=session.ip)
            return AUTH_BUSY
        if user is None:
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
        v, addr = await self.pipeline.check_sender(st.client, path.mailbox,
                                                   declared_size=env.declared_size,
                                                   smtputf8=env.smtputf8)
        if v.ok:
            env.sender = addr
            st.env = env
        else:
            st.log.info("smtp.sender_refused", ip=session.ip, sender=path.mailbox,
                        reply=str(v))
            self.trace.sender_refused(session, st, path.mailbox, v)
        return v

    async def on_rcpt(self, session: Session, path: Path) -> Verdict:
        st: SessionState = session.state
        env = st.env
        assert env is not None
        v, rcpt = await self.pipeline.check_recipient(st.client, env, path.mailbox, path.route)
        env.results.append((path.mailbox, f"{v.code}/{v.enhanced}"))
        if rcpt is not None:
            env.recipients.append(rcpt)
        self.trace.recipient(st, env.sender_text, path.mailbox, v)
        if self.pipeline.unknown_recipient(v):
            return await self._harvest(session, st, v)
        return v

    async def _harvest(self, session: Session, st: SessionState, v: Verdict) -> Verdict:
        """Directory harvest: unknown recipients past a few cost time, then
        the session, and count against the address as failed logins do."""
        s = self.settings()
        window = float(s.limits.auth_window)
        st.unknown += 1
        if st.unknown == 1:
            st.harvester = bool(await self.auth.blocked_for(session.ip, s.limits.auth_failures,
                                                             window))
        delay, end = self.pipeline.harvest(st.unknown, st.harvester)
        if end is not None:
            st.log.info("smtp.harvest", ip=session.ip, unknown=st.unknown - 1)
            await self.auth.record_failure(session.ip, window)
            return end
        if delay:
            await asyncio.sleep(delay)
        return v

    def data_limit(self, session: Session) -> int:
        return self.pipeline.size_limit()

    def too_big(self, session: Session, size: int) -> Verdict:
        return self.pipeline.oversize(size, self.pipeline.size_limit())

    async def on_message(self, session: Session, content: bytes, size: int) -> Verdict:
        st: SessionState = session.state
        env = st.env
        assert env is not None
        decision = await self.pipeline.check_message(st.client, env, content, size)
        # A refused message has its queue id too: the log line of a virus or a
        # spam refusal is found by it like any other.
        v, qid, job = decision.verdict, new_qid(), None
        if v.ok:
            trace = self.ingest.trace(
                qid=qid, sender=env.sender_text, helo=st.client.helo, ip=session.ip,
                tls=session.tls, auth=session.authenticated, esmtp=session.esmtp,
                smtputf8=env.smtputf8, recipients=[str(r.address) for r in env.recipients])
            job = decision.job(env, qid=qid, trace=trace, content=content)
            v = stored_verdict(await self.ingest.submit(job))
        self._log_transaction(session, st, env, v, qid, size, decision)
        self.trace.message(session, st, env, v, qid if job and job.accepted else "", decision,
                           job, content, size)
        st.env = None
        st.messages += 1
        return v

    def on_reset(self, session: Session) -> None:
        st: SessionState = session.state
        if st is not None and st.env is not None:
            if st.env.results:
                self._log_transaction(session, st, st.env, None, "", 0)
            self.trace.abandoned(session, st)
            st.env = None

    def _log_transaction(self, session: Session, st: SessionState, env: Envelope,
                         v: Verdict | None, qid: str, size: int,
                         decision: Decision | None = None) -> None:
        """One line per transaction; `checks` lists every check's finding
        (name=points (words)) so the message trace can show them."""
        ms = int((time.monotonic() - st.started) * 1000) if st.started else 0
        st.log.info("smtp.message" if v is not None else "smtp.abandoned",
                    qid=qid or None, ip=session.ip, helo=st.client.helo or None,
                    user=st.client.user.address if st.client.user else None,
                    sender=f"<{env.sender_text}>",
                    rcpts=",".join(f"<{raw}>={res}" for raw, res in env.results),
                    size=size, tls="yes" if session.tls else "no",
                    result=f"{v.code}/{v.enhanced}" if v is not None else "none",
                    reason=None if v is None or v.ok else v.text,
                    score=decision.score if decision and decision.required else None,
                    spam=("allow" if decision.allowed else "yes" if decision.spam else "no")
                    if decision and decision.required else None,
                    checks=decision.explain() or None if decision else None,
                    virus=_virus_status(decision), ms=ms)

    def on_close(self, session: Session, reason: str) -> None:
        st: SessionState | None = session.state
        if st is not None:
            st.log.debug("smtp.close", ip=session.ip, reason=reason, messages=st.messages)

    def on_error(self, session: Session, exc: BaseException) -> None:
        self.log.error("smtp.internal_error", sid=session.sid, ip=session.ip,
                       error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self.pipeline.close()
