"""`coremail doctor`: the classic causes of "I can't send" and "I can't
receive", checked one by one, each a line "ok", "warn" or "fail" in words
with what to do (INTERFACE.md). The DNS checks are in doctor_dns.py; here
the services and their ports, the data directory's free space and inodes,
the queue, the certificate, clamd, and an optional outbound port-25 probe.

The supervisor's status is passed in (`status`), since services sit below
the supervisor; the webadmin's dashboard calls `Doctor.run_async` the same
way the CLI calls `Doctor.run`.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import time
from pathlib import Path
from typing import Callable

from ..config import Settings
from ..dns import Resolver
from ..store.interfaces import Store
from .doctor_dns import DnsChecks
from .doctor_result import Finding, fail, ok, warn
from .queue import age, in_words

# Which service answers on which listener (config [listen] keys).
LISTENER_SERVICE = {"smtp": "smtp", "submission": "smtp", "smtps": "smtp", "pop3": "pop3",
                    "pop3s": "pop3", "imap": "imap", "imaps": "imap", "http": "web"}
QUEUE_WARN = (100, 3600.0)          # messages, or the oldest's age in seconds
QUEUE_FAIL = (5000, 86400.0)
CERT_WARN_DAYS, CERT_FAIL_DAYS = 30, 7


def _size(n: float) -> str:
    for unit, div in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} bytes"


class Doctor:
    def __init__(self, home: Path, settings: Settings, store: Store, *,
                 status: Callable[[], dict] | None = None,
                 resolver: Resolver | None = None):
        self.home = Path(home)
        self.settings = settings
        self.store = store
        self.status = status
        self.resolver = resolver

    def run(self, *, domains: list[str] | None = None, probe: str | None = None
            ) -> list[Finding]:
        return asyncio.run(self.run_async(domains=domains, probe=probe))

    async def run_async(self, *, domains: list[str] | None = None, probe: str | None = None
                        ) -> list[Finding]:
        out = await asyncio.to_thread(self.services)
        local = domains or await asyncio.to_thread(
            lambda: [d.name for d in self.store.list_domains()])
        res = self.resolver or Resolver.from_settings(self.settings)
        out += await DnsChecks(self.settings, res, local, self.home).run()
        out += await asyncio.to_thread(self.storage)
        out.append(await asyncio.to_thread(self.queue))
        out += await asyncio.to_thread(self.certificate)
        clamd = await asyncio.to_thread(self.clamd)
        if clamd is not None:
            out.append(clamd)
        if probe:
            out.append(await asyncio.to_thread(self.probe, probe))
        return out

    # ------------------------------------------------------------ services
    def services(self) -> list[Finding]:
        if self.status is None:
            return []
        try:
            reply = self.status()
        except Exception as e:  # noqa: BLE001 - not running, a dead socket: both are findings
            return [fail("services", f"coremail is not running: {e}",
                         "start it with `coremail start`")]
        out, running = [], set()
        for s in reply.get("services", []):
            if s.get("state") == "running":
                running.add(s["name"])
                out.append(ok(f"service {s['name']}", f"running (pid {s.get('pid')})"))
            else:
                why = f": {s['error']}" if s.get("error") else ""
                out.append(fail(f"service {s['name']}", f"{s['name']} is {s.get('state')}{why}",
                                f"start it with `coremail start {s['name']}` and read "
                                f"logs/{s['name']}.log if it stops again"))
        out += self.ports(running)
        return out

    def ports(self, running: set[str]) -> list[Finding]:
        lst = self.settings.listen
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(lst.address,
                                                                          lst.address)
        out = []
        for name, service in LISTENER_SERVICE.items():
            port = getattr(lst, name)
            if not port or service not in running:
                continue
            try:
                with socket.create_connection((host, port), timeout=3):
                    pass
                out.append(ok(f"port {name}", f"{host}:{port} accepts connections"))
            except OSError as e:
                out.append(fail(f"port {name}", f"{host}:{port} ({name}) does not accept "
                                f"connections: {e.strerror or e}",
                                f"restart the {service} service (`coremail restart {service}`) "
                                f"and check that nothing else holds port {port}"))
        return out

    # ------------------------------------------------------------- storage
    def storage(self) -> list[Finding]:
        data = self.home / "data"
        try:
            st = os.statvfs(data)
        except OSError as e:
            return [fail("storage", f"the data directory {data} cannot be read: {e}",
                         "check that it exists and is mounted")]
        out = []
        total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        big = int(self.settings.limits.max_message_size)
        what = f"{_size(free)} free of {_size(total)} in {data}"
        if free < max(1024**2, total // 1000):
            out.append(fail("disk space", f"the data directory has no free space left ({what}):"
                            " incoming mail is refused (452 4.3.1), POP3 and IMAP cannot "
                            "save changes", "free space (old logs, backups) or grow the disk"))
        elif free < total // 10 or free < big:
            out.append(warn("disk space", f"the data directory is nearly full ({what})",
                            "free space or grow the disk before mail is refused"))
        else:
            out.append(ok("disk space", what))
        if not st.f_files:
            out.append(ok("inodes", "this filesystem has no fixed number of inodes"))
        elif st.f_favail < max(16, st.f_files // 1000):
            out.append(fail("inodes", f"the data directory has no free inodes left "
                            f"({st.f_favail} of {st.f_files}), though {_size(free)} are free: "
                            "no new file (a message) can be made, so mail is refused",
                            "delete many small files (old logs, temp files) or move the "
                            "data to a filesystem with more inodes"))
        elif st.f_favail < st.f_files // 10:
            out.append(warn("inodes", f"few free inodes in the data directory "
                            f"({st.f_favail} of {st.f_files})",
                            "delete small files or plan a filesystem with more inodes"))
        else:
            out.append(ok("inodes", f"{st.f_favail} of {st.f_files} inodes free"))
        return out

    # --------------------------------------------------------------- queue
    def queue(self) -> Finding:
        entries = self.store.queue_list()
        if not entries:
            return ok("queue", "the outbound queue is empty")
        now = time.time()
        oldest = min(entries, key=lambda e: e.created)
        waited = now - oldest.created
        words = f"{len(entries)} message(s) queued, the oldest {oldest.id} for {age(waited)}"
        if oldest.last_error:
            first = next((r.address for r in oldest.recipients if r.status == "pending"), "")
            words += f": {in_words(first, oldest.last_error, waited)}"
        todo = ("see `coremail queue list`; once the cause is fixed `coremail queue flush` "
                "retries everything")
        if len(entries) >= QUEUE_FAIL[0] or waited >= QUEUE_FAIL[1]:
            return fail("queue", words, todo)
        if len(entries) >= QUEUE_WARN[0] or waited >= QUEUE_WARN[1]:
            return warn("queue", words, todo)
        return ok("queue", words)

    # --------------------------------------------------------- certificate
    def certificate(self) -> list[Finding]:
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID, NameOID
        path = self.home / "conf" / "tls" / "cert.pem"
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as e:
            return [fail("certificate", f"{path} cannot be read: {e}",
                         "put the certificate (PEM, with its chain) there")]
        out = []
        left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
        days = left.total_seconds() / 86400
        until = cert.not_valid_after_utc.strftime("%Y-%m-%d")
        renew = "renew it and put the new one in conf/tls/, then restart the services"
        if days < 0:
            out.append(fail("certificate", f"the certificate expired on {until}: clients "
                            "refuse TLS", renew))
        elif days < CERT_FAIL_DAYS:
            out.append(fail("certificate", f"the certificate expires in {days:.0f} day(s) "
                            f"({until})", renew))
        elif days < CERT_WARN_DAYS:
            out.append(warn("certificate", f"the certificate expires in {days:.0f} days "
                            f"({until})", renew))
        else:
            out.append(ok("certificate", f"valid until {until}"))
        try:
            names = cert.extensions.get_extension_for_oid(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        host = self.settings.server.hostname.lower()
        if not any(_name_matches(str(n).lower(), host) for n in names):
            out.append(fail("certificate name", f"the certificate is for {', '.join(map(str, names))}"
                            f", not for {host}: clients warn or refuse",
                            f"get a certificate for {host}"))
        else:
            out.append(ok("certificate name", f"the certificate names {host}"))
        if cert.issuer == cert.subject:
            out.append(warn("certificate issuer", "the certificate is self-signed: mail "
                            "programs warn about it", "get one from a certificate authority "
                            "(e.g. an ACME one such as Let's Encrypt) for "
                            f"{host} and put it in conf/tls/"))
        return out

    # --------------------------------------------------------------- clamd
    def clamd(self) -> Finding | None:
        section = getattr(self.settings, "antivirus", None)
        where = str(getattr(section, "clamd", "") or "")
        if not where:
            return None
        try:
            if where.startswith("unix:"):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(where[5:])
            else:
                host, _, port = where.rpartition(":")
                s = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
            with s:
                s.sendall(b"zPING\0")
                reply = s.recv(64)
        except (OSError, ValueError) as e:
            return fail("clamd", f"clamd at {where} does not answer: {e}",
                        "start clamd (systemctl start clamav-daemon) or correct antivirus.clamd")
        if not reply.startswith(b"PONG"):
            return fail("clamd", f"clamd at {where} answered {reply!r} to PING",
                        "check clamd's log")
        return ok("clamd", f"clamd at {where} answers")

    # --------------------------------------------------------------- probe
    def probe(self, host: str) -> Finding:
        name, _, port_text = host.partition(":")
        port = int(port_text) if port_text.isdigit() else 25
        try:
            with socket.create_connection((name, port), timeout=10) as s:
                s.settimeout(10)
                banner = s.recv(512).decode("utf-8", "replace").strip().splitlines()
        except OSError as e:
            return fail("probe", f"no outbound connection to {name} port {port}: "
                        f"{e.strerror or e}", "many providers block outbound port 25: ask "
                        "them to open it, or send through a relay (delivery.relayhost)")
        first = banner[0] if banner else ""
        if not first.startswith("220"):
            return warn("probe", f"{name} port {port} answered {first!r} instead of a "
                        "220 greeting", "try another host; this one may not take mail")
        return ok("probe", f"{name} port {port} answered: {first}")


def _name_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.partition(".")[2] == pattern[2:]
    return pattern == host
