"""The sender-authentication check: SPF and DKIM at once on the pipeline's
threads, then DMARC over both; one Authentication-Results field (RFC 8601)
under server.hostname, named scores, Junk for p=quarantine and 550 5.7.1 for
p=reject. Only mail from outside is checked (port 25, not logged in); from
every message, Authentication-Results fields that claim our authserv-id
are taken out (RFC 8601 5), whoever sent them (ForgedResults)."""
from __future__ import annotations

import asyncio

from ...mail.author import author_domain
from ...mail.envelope import field_value, scan_header
from ..checks import CheckResult, Message, Score
from ..verdict import Verdict
from .bridge import ThreadDns
from .dkimcheck import DkimResult, verify_all
from .dmarccheck import DmarcResult, check_dmarc
from .spfcheck import SpfResult, check_spf

DNS_BUDGET = 15.0   # seconds for all DNS of one message (the check's time-out is longer)
JUNK = "Junk"

SPF_SCORES = {"pass": -0.1, "fail": 2.0, "softfail": 1.0, "neutral": 0.0, "none": 0.0,
              "permerror": 0.5, "temperror": 0.0}


def authserv_id(value: str) -> str:
    """The authserv-id of an Authentication-Results value (comments dropped)."""
    head = value.split(";", 1)[0]
    while "(" in head and ")" in head[head.index("("):]:
        a = head.index("(")
        head = head[:a] + " " + head[head.index(")", a) + 1:]
    return (head.split() or [""])[0].lower().rstrip(".")


def forged_results(header: bytes, hostname: str) -> list[bytes]:
    """The raw Authentication-Results fields that claim to be ours."""
    fields, _, _ = scan_header(header, 0, len(header))
    me = hostname.lower().rstrip(".")
    return [header[f[1]:f[2]] for f in fields
            if f[0] == "authentication-results" and authserv_id(field_value(header, f)) == me]


def _ptype(value: str) -> str:
    return value if value and all(c.isprintable() and c not in ' ;()"\\' for c in value) \
        else f'"{value}"'


def results_header(hostname: str, spf: SpfResult | None, dkim: list[DkimResult] | None,
                   dmarc: DmarcResult | None) -> str:
    parts = [hostname]
    if spf is not None:
        key, _, value = spf.identity.partition("=")
        parts.append(f"spf={spf.result} {key}={_ptype(value)}")
    if dkim is not None:
        if not dkim:
            parts.append("dkim=none")
        for d in dkim:
            why = f" ({d.reason})" if d.reason and d.result != "pass" else ""
            parts.append(f"dkim={d.result}{why} header.d={_ptype(d.domain)} "
                         f"header.s={_ptype(d.selector)} header.a={_ptype(d.algorithm)} "
                         f"header.b={_ptype(d.b)}")
    if dmarc is not None:
        extra = f" (p={dmarc.policy} dis={dmarc.applied.upper()})" if dmarc.result == "fail" else ""
        parts.append(f"dmarc={dmarc.result}{extra} header.from={_ptype(dmarc.domain) or 'none'}")
    if len(parts) == 1:
        parts.append("none")
    return ";\r\n\t".join(parts)


def _scores(spf: SpfResult | None, dkim: list[DkimResult] | None,
            dmarc: DmarcResult | None) -> list[Score]:
    out = []
    if spf is not None:
        out.append(Score(f"SPF_{spf.result.upper()}", SPF_SCORES.get(spf.result, 0.0),
                         f"SPF {spf.result} for {spf.identity}"
                         + (f": {spf.explanation}" if spf.explanation else "")))
    if dkim:
        good = [d for d in dkim if d.result == "pass"]
        bad = [d for d in dkim if d.result in ("fail", "permerror")]
        if good:
            out.append(Score("DKIM_VALID", -0.1, "valid DKIM signature of "
                             + ", ".join(sorted({d.domain for d in good}))))
        if bad:
            out.append(Score("DKIM_INVALID", 0.1 if good else 1.0, "DKIM signature that does "
                             "not verify: " + "; ".join(f"d={d.domain} s={d.selector}: "
                                                       f"{d.reason}" for d in bad)))
    if dmarc is not None and dmarc.result in ("pass", "fail"):
        if dmarc.result == "pass":
            out.append(Score("DMARC_PASS", -0.5, f"DMARC pass for {dmarc.domain} ({dmarc.reason})"))
        else:
            points = {"reject": 4.0, "quarantine": 3.0}.get(dmarc.applied, 1.0)
            out.append(Score(f"DMARC_{dmarc.applied.upper()}", points,
                             f"DMARC fail for {dmarc.domain}: {dmarc.reason} (policy "
                             f"p={dmarc.policy}, applied {dmarc.applied})"))
    return out


class ForgedResults:
    """Authentication-Results fields that claim our authserv-id are taken out
    of every message (RFC 8601 5). Apart from SenderAuth and without DNS, so
    that a check slowed past its time-out cannot leave a forged one in place."""

    name = "forged-auth-results"
    kind = "auth"

    async def __call__(self, msg: Message) -> CheckResult | None:
        drop = forged_results(msg.header, msg.settings.server.hostname)
        return CheckResult(drop=drop) if drop else None


class SenderAuth:
    """Registered in pipeline.registry. kind "auth": it runs with or without
    antispam (its switches are [authentication]); decide keeps only its
    header and removals for allow-listed mail."""

    name = "senderauth"
    kind = "auth"

    def __init__(self, resolver):
        self.resolver = resolver   # () -> dns.Resolver, the registry's

    async def __call__(self, msg: Message) -> CheckResult | None:
        s = msg.settings
        a = s.authentication
        hostname = s.server.hostname
        result = CheckResult()
        outside = msg.client.listener == "smtp" and not msg.client.authenticated
        if not outside or not (a.spf or a.dkim_verify or a.dmarc):
            return None
        dns = ThreadDns(self.resolver(), asyncio.get_running_loop(), DNS_BUDGET)
        env = msg.env
        spf_job = (asyncio.ensure_future(msg.run(check_spf, dns, msg.client.ip, env.sender_text,
                                                 msg.client.helo)) if a.spf or a.dmarc else None)
        # dkimpy parses the whole message before it looks for a signature:
        # an unsigned message (most of them) is known so from its header.
        signed = any(n == "dkim-signature" for n, _ in msg.fields)
        dkim_job = (asyncio.ensure_future(msg.run(verify_all, dns, msg.content))
                    if (a.dkim_verify or a.dmarc) and signed else None)
        spf: SpfResult | None = await spf_job if spf_job is not None else None
        dkim: list[DkimResult] | None = await dkim_job if dkim_job is not None else (
            [] if a.dkim_verify or a.dmarc else None)
        dmarc = None
        if a.dmarc:
            dmarc = await msg.run(check_dmarc, dns, author_domain(msg.header), spf, dkim or [])
        shown_spf = spf if a.spf else None
        shown_dkim = dkim if a.dkim_verify else None
        result.headers.append(("Authentication-Results",
                               results_header(hostname, shown_spf, shown_dkim, dmarc)))
        result.scores = _scores(shown_spf, shown_dkim, dmarc)
        if dmarc is not None and dmarc.result == "fail":
            if dmarc.applied == "reject":
                result.verdict = Verdict(550, "5.7.1", f"rejected by the DMARC policy of "
                                         f"{dmarc.domain}: the message is not authenticated "
                                         f"as coming from {dmarc.domain} (SPF and DKIM do not "
                                         "pass for that domain)")
            elif dmarc.applied == "quarantine":
                result.folders = {r.address.key: JUNK for r in env.recipients}
        return result
