"""DMARC (RFC 7489): the author domain's policy record (or its organisational
domain's, found through the public suffix list), identifier alignment of the
SPF and DKIM passes, and the policy that applies: p= or sp=, sampled by pct=.
The record parse and the alignment rules are a few lines of the RFC; no
maintained Python library does them apart from a whole framework."""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from .bridge import ThreadDns
from .dkimcheck import DkimResult
from .spfcheck import SpfResult

_psl: PublicSuffixList | None = None
_psl_lock = threading.Lock()
POLICIES = ("none", "quarantine", "reject")


def org_domain(domain: str) -> str:
    """The organisational domain (RFC 7489 3.2): one label under the public suffix."""
    global _psl
    with _psl_lock:
        if _psl is None:
            _psl = PublicSuffixList()
    domain = domain.lower().rstrip(".")
    return _psl.privatesuffix(domain) or domain


def aligned(a: str, b: str, mode: str) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if mode == "s" else org_domain(a) == org_domain(b)


@dataclass(frozen=True)
class DmarcResult:
    result: str          # pass fail none temperror permerror
    domain: str          # header.from
    policy: str = "none"  # the requested policy for this domain (p= or sp=)
    applied: str = "none"  # what is done: none, quarantine, reject (after pct=)
    reason: str = ""


def parse_record(text: str) -> dict[str, str] | None:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        k, sep, v = part.partition("=")
        if sep:
            tags.setdefault(k.strip().lower(), v.strip())
    if tags.get("v") != "DMARC1" or not text.lstrip().startswith("v"):
        return None
    return tags


def _record(dns: ThreadDns, domain: str) -> tuple[dict[str, str] | None, bool]:
    """(the record, temporary failure) at _dmarc.DOMAIN."""
    name = f"_dmarc.{domain}"
    answer = dns.lookup(name, "TXT")
    if answer.temporary:
        return None, True
    found = [t for t in (parse_record(r) for r in answer.records) if t is not None]
    return (found[0] if len(found) == 1 else None), False


def check_dmarc(dns: ThreadDns, author: str | None, spf: SpfResult | None,
                dkim: list[DkimResult], *, sample: float | None = None) -> DmarcResult:
    """Blocking. `sample` (0..1) stands in for the random draw of pct=."""
    if not author:
        return DmarcResult("none", "", reason="no single From domain")
    org = org_domain(author)
    tags, temp = _record(dns, author)
    at_org = False
    if tags is None and not temp and org != author:
        tags, temp = _record(dns, org)
        at_org = True
    if temp:
        return DmarcResult("temperror", author, reason="DNS did not answer for the policy")
    if tags is None:
        return DmarcResult("none", author, reason="no DMARC record")
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        # RFC 7489 6.6.3: a record without a valid p= but with rua= is p=none.
        if "rua" not in tags:
            return DmarcResult("permerror", author, reason=f"bad policy p={p!r}")
        p = "none"
    sp = tags.get("sp", "").lower()
    policy = sp if at_org and sp in POLICIES else p
    adkim, aspf = tags.get("adkim", "r").lower()[:1], tags.get("aspf", "r").lower()[:1]
    if any(d.result == "pass" and aligned(d.domain, author, adkim) for d in dkim):
        return DmarcResult("pass", author, policy, "none", "DKIM aligned")
    if spf is not None and spf.result == "pass" and aligned(spf.domain, author, aspf):
        return DmarcResult("pass", author, policy, "none", "SPF aligned")
    try:
        pct = min(100, max(0, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    draw = random.random() if sample is None else sample
    applied = policy
    if draw * 100 >= pct:   # RFC 7489 6.6.4: outside the sample, one step milder
        applied = {"reject": "quarantine", "quarantine": "none"}.get(policy, "none")
    return DmarcResult("fail", author, policy, applied,
                       "neither SPF nor DKIM passed aligned with the From domain")
