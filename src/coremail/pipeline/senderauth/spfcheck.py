"""SPF (RFC 7208) with pyspf, its look-ups answered through ThreadDns.

pyspf asks DNS through its module-level `DNSLookup`; that one function is
replaced, once, by a dispatcher to the ThreadDns of the check running on
the current thread (pyspf's own limits, ten look-ups and two void ones,
stay in force)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import spf

from .bridge import ThreadDns

_current = threading.local()
_original = spf.DNSLookup
SPF_TIME = 10.0   # seconds for all of one message's SPF look-ups


def _lookup(name, qtype, strict=True, timeout=None):
    dns: ThreadDns | None = getattr(_current, "dns", None)
    if dns is None:
        return _original(name, qtype, strict, timeout)
    answer = dns.lookup(str(name), qtype)
    if answer.temporary:
        raise spf.TempError(f"DNS {answer.reason or 'no answer'} for {name}")
    out = []
    for v in answer.records:
        if qtype in ("TXT", "SPF"):
            v = (v.encode("utf-8"),)
        elif qtype == "MX":
            v = (v.preference, v.exchange)
        out.append(((str(name), qtype), v))
    return out


spf.DNSLookup = _lookup


@dataclass(frozen=True)
class SpfResult:
    result: str        # pass fail softfail neutral none permerror temperror
    identity: str      # "smtp.mailfrom=..." or "smtp.helo=..."
    domain: str        # the domain checked (for DMARC alignment)
    explanation: str


def check_spf(dns: ThreadDns, ip: str, sender: str, helo: str) -> SpfResult:
    """Blocking: the SPF result for the envelope sender (or, for the null
    sender, postmaster@HELO as RFC 7208 2.4 says)."""
    if sender:
        identity, domain = f"smtp.mailfrom={sender}", sender.rpartition("@")[2].lower()
        who = sender
    else:
        identity, domain = f"smtp.helo={helo}", helo.lower()
        who = f"postmaster@{helo}"
    _current.dns = dns
    try:
        q = spf.query(i=ip, s=who, h=helo or domain, timeout=SPF_TIME, querytime=SPF_TIME)
        result, _code, explanation = q.check()
    except Exception as e:  # noqa: BLE001 - a malformed name or record: permanent error
        result, explanation = "permerror", str(e)
    finally:
        _current.dns = None
    return SpfResult(result or "none", identity, domain, explanation or "")
