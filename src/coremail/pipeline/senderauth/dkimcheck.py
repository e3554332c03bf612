"""DKIM verification (RFC 6376, RFC 8463) of every signature with dkimpy; the
key records come through ThreadDns."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim
from dkim.util import parse_tag_value

from .bridge import ThreadDns

_quiet = logging.getLogger("coremail.dkim")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True)
class DkimResult:
    result: str        # pass fail neutral temperror permerror
    domain: str        # d=
    selector: str      # s=
    algorithm: str     # a=
    b: str             # the first characters of b=, which tell the signatures apart
    reason: str = ""


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return parse_tag_value(value)
    except Exception:  # noqa: BLE001 - dkimpy's own parse error: the signature is broken
        return {}


def verify_all(dns: ThreadDns, content: bytes) -> list[DkimResult]:
    """Blocking: one result per DKIM-Signature field, in order."""
    d = dkim.DKIM(content, logger=_quiet, timeout=5)
    sigs = [v for n, v in d.headers if n.lower() == b"dkim-signature"]
    out = []
    for i, raw in enumerate(sigs):
        tags = _tags(raw)
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace")
        algorithm = tags.get(b"a", b"").decode("ascii", "replace")
        b = b"".join(tags.get(b"b", b"").split()).decode("ascii", "replace")[:8]
        if algorithm.lower() == "rsa-sha1":
            out.append(DkimResult("fail", domain, selector, algorithm, b,
                                  "rsa-sha1 is not accepted (RFC 8301)"))
            continue
        no_key = False
        try:
            ok = d.verify(i, dnsfunc=dns.dkim_txt)
            reason = "" if ok else "signature did not verify"
        except dkim.KeyFormatError as e:   # no key, or not one dkimpy can use
            ok, no_key, reason = False, True, str(e)
        except dkim.DKIMException as e:
            ok, reason = False, str(e)
        key_name = f"{selector}._domainkey.{domain}".lower()
        if ok:
            result = "pass"
        elif key_name in dns.failed:
            result, reason = "temperror", "the key look-up failed"
        elif no_key or not tags or not domain or not selector:
            result = "permerror"
        else:
            result = "fail"
        out.append(DkimResult(result, domain, selector, algorithm, b, reason))
    return out
