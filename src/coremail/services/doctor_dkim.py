"""The DKIM lines of `coremail doctor`: for each key of a local domain
(mail.dkimkeys, as `coremail dns` publishes them through services.dnsrecords)
the TXT record at SELECTOR._domainkey.DOMAIN, compared by its tags (k= and
p=, RFC 6376 3.6.1) with the key this server signs with; a signing key not
published, or published with another key, fails: receivers cannot verify
our signatures and DMARC may then reject the mail."""
from __future__ import annotations

import asyncio
from pathlib import Path

from ..dns import Resolver
from ..dns.resolver import Status
from ..mail.dkimkeys import DkimKey, list_keys
from .dnsrecords import dkim_record
from .doctor_result import Finding, fail, ok, warn


def tags(record: str) -> dict[str, str]:
    """A DKIM key record's tags (tag=value; ...), values without blanks."""
    out = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            out[name.strip().lower()] = "".join(value.split())
    return out


def _keys(home: Path, domain: str) -> list[tuple[DkimKey, str, str]]:
    """(key, its record's zone line, its p= value): reading and parsing the keys blocks."""
    return [(k, dkim_record(k).zone_line(), k.public_b64()) for k in list_keys(home, domain)]


async def dkim_findings(home: Path, res: Resolver, domain: str) -> list[Finding]:
    keys = await asyncio.to_thread(_keys, home, domain)
    check = f"dkim {domain}"
    if not keys:
        return [warn(check, f"{domain} has no DKIM key: its mail goes out unsigned, and "
                     "receivers trust it less", f"run `coremail dns {domain}` (it makes the "
                     "keys) and publish the DKIM records it prints")]
    out = []
    for key, line, p in keys:
        name = f"{key.selector}._domainkey.{domain}"
        got = await res.txt(name)
        publish = f"publish `{line}` (see `coremail dns {domain}`)"
        use = "signs mail now" if key.active else "a retired key"
        found = [tags(r) for r in got.records if tags(r).get("v", "DKIM1") == "DKIM1"
                 and "p" in tags(r)]
        if got.temporary:
            out.append(warn(check, f"the DKIM record at {name} could not be looked up: "
                            f"{got.reason}", "try again later"))
        elif got.status is not Status.OK or not found:
            if key.active:
                out.append(fail(check, f"{name} publishes no DKIM key, but selector "
                                f"{key.selector} {use}: receivers cannot verify the "
                                f"signatures of mail from {domain}", publish))
            else:
                out.append(warn(check, f"{name} publishes no DKIM key for {use}: mail "
                                "signed with it that is still on its way fails", publish))
        elif not any(t.get("p") == p and t.get("k", "rsa") == key.kind for t in found):
            out.append(fail(check, f"the DKIM record at {name} holds another key than the "
                            f"one this server signs with (selector {key.selector}): "
                            "signatures fail", f"replace it: {publish}"))
        else:
            kind = "RSA 2048" if key.kind == "rsa" else "Ed25519"
            out.append(ok(check, f"{name} publishes this server's {kind} key ({use})"))
    return out
