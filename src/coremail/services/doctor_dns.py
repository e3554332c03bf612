"""The DNS half of `coremail doctor`: the resolver, each local domain's MX,
the server's name and addresses, reverse DNS (PTR, forward-confirmed), the
configured DNSBLs, and the SPF and DMARC records (DKIM: doctor_dkim.py). Each check returns
`Finding`s in words with what to do; DNS trouble is a finding, never an
exception. Asked through the one resolver (coremail.dns), which honours
delivery.nameservers.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path

from ..config import Settings
from ..dns import Resolver
from ..dns.names import reverse_name
from ..dns.resolver import Status
from .doctor_dkim import dkim_findings
from .doctor_result import Finding, fail, ok, warn

def is_local_address(ip: str) -> bool:
    """Does this machine hold ``ip``? Binding to it succeeds only if so."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


class DnsChecks:
    def __init__(self, settings: Settings, resolver: Resolver, domains: list[str],
                 home: Path | None = None):
        self.settings = settings
        self.res = resolver
        self.domains = domains
        self.home = home    # where the DKIM keys are (none: no DKIM lines)
        self.hostname = settings.server.hostname.lower().rstrip(".")
        self.addresses: list[str] = []   # of the hostname: where our mail comes from

    async def run(self) -> list[Finding]:
        out = [await self.resolver()]
        if out[0].status == "fail":
            return out     # every other DNS check would only repeat it
        out.append(await self.own_name())
        for d in self.domains:
            out.append(await self.mx(d))
        out.extend(await self.reverse())
        out.extend(await self.dnsbl())
        for d in self.domains:
            out.extend(await self.auth_records(d))
        return out

    async def resolver(self) -> Finding:
        ns = ", ".join(self.settings.delivery.nameservers) or "the system resolver"
        a = await self.res.lookup(self.hostname, "A")
        if a.temporary:
            return fail("dns", f"the DNS resolver ({ns}) does not answer: {a.reason}",
                        "check delivery.nameservers (or /etc/resolv.conf) and that the "
                        "resolver is reachable; without DNS no mail goes out")
        return ok("dns", f"the DNS resolver ({ns}) answers")

    async def own_name(self) -> Finding:
        h = self.hostname
        got = await self.res.addresses(h)
        if got.status is not Status.OK:
            return fail("hostname", f"{h} (server.hostname) has no address in DNS "
                        f"({got.status.value})", f"publish an A (and AAAA) record for {h} "
                        "with this server's address")
        self.addresses = list(got.records)
        ips = ", ".join(got.records)
        if not any(is_local_address(ip) for ip in got.records):
            return warn("hostname", f"{h} resolves to {ips}, which is no address of this "
                        "machine", "fine behind NAT or port forwarding; otherwise correct "
                        f"the A/AAAA record of {h}")
        return ok("hostname", f"{h} resolves to {ips}, an address of this server")

    async def mx(self, domain: str) -> Finding:
        got = await self.res.mx(domain)
        fix = f"publish `{domain}. MX 10 {self.hostname}.`"
        if got.temporary:
            return warn(f"mx {domain}", f"the MX of {domain} could not be looked up: "
                        f"{got.reason}", "try again; if it stays, check the domain's DNS servers")
        if got.status is not Status.OK or not got.records:
            return fail(f"mx {domain}", f"{domain} has no MX record: other servers cannot "
                        f"find where to deliver its mail", fix)
        hosts = [m.exchange for m in sorted(got.records)]
        if "" in hosts and len(hosts) == 1:
            return fail(f"mx {domain}", f"{domain} has a null MX (it says it takes no mail)",
                        f"remove the null MX and {fix}")
        if self.hostname not in hosts:
            return fail(f"mx {domain}", f"the MX of {domain} points at {', '.join(hosts)}, "
                        f"not at this server ({self.hostname})",
                        f"change it: {fix} (or set server.hostname to the MX name)")
        if hosts[0] != self.hostname:
            return warn(f"mx {domain}", f"this server ({self.hostname}) is an MX of {domain} "
                        f"but not the preferred one ({hosts[0]} is)",
                        "fine for a backup MX; else give it the lowest preference")
        return ok(f"mx {domain}", f"the MX of {domain} points at {self.hostname}")

    async def reverse(self) -> list[Finding]:
        out = []
        for ip in self.addresses:
            ptr = await self.res.ptr(ip)
            fix = f"ask whoever gives you {ip} (your provider) to set its PTR to {self.hostname}"
            if ptr.temporary:
                out.append(warn(f"ptr {ip}", f"the PTR of {ip} could not be looked up: "
                                f"{ptr.reason}", "try again later"))
                continue
            if ptr.status is not Status.OK:
                out.append(warn(f"ptr {ip}", f"{ip} has no reverse DNS (PTR): many servers "
                                "refuse or junk mail from such an address", fix))
                continue
            names = list(ptr.records)
            confirmed = []
            for n in names:
                back = await self.res.addresses(n)
                if ip in back.records:
                    confirmed.append(n)
            if not confirmed:
                out.append(warn(f"ptr {ip}", f"{ip} points back to {', '.join(names)}, which "
                                f"does not resolve to {ip} (no forward-confirmed reverse DNS)",
                                f"publish an A record for {names[0]} with {ip}, or {fix}"))
            elif self.hostname not in confirmed:
                out.append(warn(f"ptr {ip}", f"{ip} points back to {confirmed[0]}, not to "
                                f"{self.hostname}", f"{fix}, or set server.hostname to "
                                f"{confirmed[0]}"))
            else:
                out.append(ok(f"ptr {ip}", f"{ip} points back to {self.hostname} and that "
                              "name resolves to it (forward-confirmed)"))
        return out

    async def dnsbl(self) -> list[Finding]:
        section = getattr(self.settings, "antispam", None)
        zones = list(getattr(section, "dnsbl", None) or [])
        out = []
        for zone in zones:
            for ip in self.addresses:
                name = reverse_name(ip, zone)
                a, txt = await asyncio.gather(self.res.a(name), self.res.txt(name))
                if a.temporary:
                    out.append(warn(f"dnsbl {zone}", f"{zone} did not answer for {ip}: "
                                    f"{a.reason}", "try again later"))
                elif a.status is Status.OK:
                    why = f" ({txt.records[0]})" if txt.records else ""
                    out.append(fail(f"dnsbl {zone}", f"this server's address {ip} is listed "
                                    f"by {zone}{why}: servers that use it refuse our mail",
                                    f"find why (an open relay, a hijacked account, spam) and "
                                    f"ask {zone} to delist {ip}"))
                else:
                    out.append(ok(f"dnsbl {zone}", f"{ip} is not listed by {zone}"))
        return out

    async def auth_records(self, domain: str) -> list[Finding]:
        out = []
        spf = [t for t in (await self.res.txt(domain)).records if t.lower().startswith("v=spf1")]
        if not spf:
            out.append(fail(f"spf {domain}", f"{domain} publishes no SPF record: many "
                            "receivers junk or refuse its mail",
                            f"publish `{domain}. TXT \"v=spf1 mx -all\"` (see `coremail dns "
                            f"{domain}`)"))
        elif len(spf) > 1:
            out.append(fail(f"spf {domain}", f"{domain} publishes {len(spf)} SPF records; "
                            "receivers treat that as an error", "keep one"))
        elif not self._spf_names_us(spf[0]):
            out.append(warn(f"spf {domain}", f"the SPF record of {domain} ({spf[0]}) may not "
                            "name this server", "add `mx` or `ip4:`/`ip6:` with this server's "
                            "address"))
        else:
            out.append(ok(f"spf {domain}", f"{domain} publishes SPF: {spf[0]}"))
        dmarc = [t for t in (await self.res.txt(f"_dmarc.{domain}")).records
                 if t.lower().startswith("v=dmarc1")]
        if not dmarc:
            out.append(warn(f"dmarc {domain}", f"{domain} publishes no DMARC record",
                            f"publish `_dmarc.{domain}. TXT \"v=DMARC1; p=none\"` (see "
                            f"`coremail dns {domain}`)"))
        else:
            out.append(ok(f"dmarc {domain}", f"{domain} publishes DMARC: {dmarc[0]}"))
        if self.home is not None:
            out.extend(await dkim_findings(self.home, self.res, domain))
        return out

    def _spf_names_us(self, record: str) -> bool:
        terms = record.lower().split()[1:]
        if any(t.lstrip("+") in ("mx", "a", f"a:{self.hostname}") or
               t.lstrip("+").startswith(("include:", "redirect=", "mx:")) for t in terms):
            return True
        for ip in self.addresses:
            for t in terms:
                t = t.lstrip("+")
                if t.startswith(("ip4:", "ip6:")):
                    try:
                        if ipaddress.ip_address(ip) in ipaddress.ip_network(t[4:], strict=False):
                            return True
                    except ValueError:
                        continue
        return False
