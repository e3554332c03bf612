"""The DNS records a local domain needs for its mail to be received and to be
trusted elsewhere (`coremail dns DOMAIN`): MX, SPF, DKIM per selector, DMARC,
the server's A/AAAA and the PTR its address should have. Each comes in zone-file
syntax, ready to paste, with a line saying what it is for; `coremail doctor`
can compare the same list with the live DNS.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..dns.names import reverse_name
from ..mail.dkimkeys import DkimKey, ensure_keys, list_keys

TXT_CHUNK = 255   # one TXT character-string at most (RFC 1035 3.3.14)


@dataclass(frozen=True)
class Record:
    name: str      # fully qualified, with the final dot
    rtype: str
    value: str     # as it is written in a zone file
    purpose: str

    def zone_line(self) -> str:
        return f"{self.name}\t3600\tIN\t{self.rtype}\t{self.value}"


def txt_value(text: str) -> str:
    """A TXT value in zone-file form, split into 255-octet strings when long."""
    parts = [text[i:i + TXT_CHUNK] for i in range(0, len(text), TXT_CHUNK)] or [""]
    quoted = " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)
    return quoted if len(parts) == 1 else f"( {quoted} )"


def server_address(settings: Settings, given: str | None) -> str | None:
    """The address the records point at: the one given, else listen.address
    when it names one; None when only the operator knows it."""
    for candidate in (given, settings.listen.address):
        if not candidate:
            continue
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if not ip.is_unspecified:
            return str(ip)
    return None


def spf_value(ip: str | None) -> str:
    mech = "mx"
    if ip is not None:
        mech += f" ip{ipaddress.ip_address(ip).version}:{ip}"
    return f"v=spf1 {mech} -all"


def dkim_record(k: DkimKey) -> Record:
    """The TXT record that publishes one DKIM key (`coremail doctor` checks it too)."""
    state = ("signs mail now" if k.active else
             "retired: keep it published until no mail signed with it can still be in "
             f"transit (a few days), then `coremail dns {k.domain} --remove {k.selector}`")
    return Record(f"{k.selector}._domainkey.{k.domain}.", "TXT", txt_value(k.record()),
                  f"DKIM public key ({'RSA 2048' if k.kind == 'rsa' else 'Ed25519'},"
                  f" selector {k.selector}): {state}")


def records(home: Path, settings: Settings, domain: str, ip: str | None = None) -> list[Record]:
    domain = domain.strip().lower().rstrip(".")
    host = settings.server.hostname.rstrip(".")
    ensure_keys(home, domain)
    keys: list[DkimKey] = list_keys(home, domain)
    out = [Record(f"{domain}.", "MX", f"10 {host}.",
                  f"mail for {domain} is delivered to this server ({host})")]
    if ip is not None:
        rtype = "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
        out.append(Record(f"{host}.", rtype, ip, f"the address of {host}, which the MX "
                          "record names"))
    out.append(Record(f"{domain}.", "TXT", txt_value(spf_value(ip)),
                      f"SPF: only this server sends mail for {domain}"))
    out += [dkim_record(k) for k in keys]
    out.append(Record(f"_dmarc.{domain}.", "TXT", txt_value(
        f"v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@{domain}"),
        "DMARC: receivers put mail that fails SPF and DKIM alignment for "
        f"{domain} in junk, and send reports to postmaster@{domain} (start with p=none to "
        "watch first; p=reject once all is well)"))
    if ip is not None:
        out.append(Record(reverse_name(ip) + ".", "PTR", f"{host}.",
                          f"reverse DNS: the owner of {ip} (your hosting provider) sets it to "
                          f"{host}; many receivers refuse mail from an address without it"))
    return out


def render(recs: list[Record], ip: str | None) -> str:
    lines = []
    for r in recs:
        lines.append(f"; {r.purpose}")
        lines.append(r.zone_line())
        lines.append("")
    if ip is None:
        lines.append("; the server's address is not known (listen.address is a wildcard): run "
                     "again with --ip ADDRESS for its A/AAAA and PTR records and an exact SPF")
    return "\n".join(lines).rstrip() + "\n"
