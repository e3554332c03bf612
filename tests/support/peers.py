"""Real remote mail servers on loopback for the outbound tests.

``PostfixMX``: a private Postfix instance (its own main.cf/master.cf, queue
and Maildirs under a temp dir) listening on one loopback address and port,
with virtual mailboxes for the given users: unknown users get Postfix's own
"550 5.1.1 ... User unknown". ``Sink``: Postfix's smtp-sink, which accepts
everything and dumps each message to a file, for counting Message-IDs.
Both need root (Postfix) and the postfix package.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
HAVE_POSTFIX = os.path.exists(POSTFIX) and os.geteuid() == 0
HAVE_SINK = os.path.exists(SMTP_SINK)

_MASTER = """\
{ip}:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def wait_port(ip: str, port: int, up: bool = True, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{ip}:{port} did not come {'up' if up else 'down'}")


class PostfixMX:
    def __init__(self, root: Path | None = None, *, domain: str, users: list[str], ip: str = "127.0.0.1",
                 port: int | None = None, extra: dict[str, str] | None = None):
        # Postfix's daemons run as the postfix user and must reach every
        # directory, which pytest's private tmp tree does not allow.
        self.root = Path(tempfile.mkdtemp(prefix="coremail-postfix-"))
        self.domain, self.users, self.ip = domain, users, ip
        self.port = port or free_port(ip)
        self.conf = self.root / "conf"
        self.mail = self.root / "mail"
        self.extra = extra or {}

    def _write(self) -> None:
        q = self.root / "q"
        for d in ("conf", "data", "mail", "q"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        pw = _ids()
        for d in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
                  "incoming", "private", "saved", "trace"):
            (q / d).mkdir(exist_ok=True)
            os.chown(q / d, pw[0], -1)
            os.chmod(q / d, 0o700)
        for d, mode in (("maildrop", 0o730), ("public", 0o710)):
            (q / d).mkdir(exist_ok=True)
            os.chown(q / d, pw[0], pw[2])
            os.chmod(q / d, mode)
        (q / "pid").mkdir(exist_ok=True)
        os.chown(self.root / "data", pw[0], -1)
        os.chown(self.mail, pw[0], pw[1])
        (self.conf / "vmailbox").write_text(
            "".join(f"{u}@{self.domain} {self.domain}/{u}/\n" for u in self.users))
        main = {
            "compatibility_level": "3.6", "queue_directory": str(q),
            "data_directory": str(self.root / "data"), "mail_owner": "postfix",
            "setgid_group": "postdrop", "myhostname": f"mx.{self.domain}",
            "mydestination": "", "inet_interfaces": self.ip, "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8", "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": str(self.mail),
            "virtual_mailbox_maps": f"texthash:{self.conf / 'vmailbox'}",
            "virtual_uid_maps": f"static:{pw[0]}", "virtual_gid_maps": f"static:{pw[1]}",
            "virtual_minimum_uid": "1", "maillog_file_prefixes": str(self.root),
            "maillog_file": str(self.root / "postfix.log"),
            "smtp_dns_support_level": "disabled", "default_transport": "error",
            "relay_transport": "error", "smtpd_banner": "$myhostname ESMTP",
            **self.extra,
        }
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.conf / "master.cf").write_text(_MASTER.format(ip=self.ip, port=self.port))

    def start(self) -> "PostfixMX":
        self._write()
        subprocess.run([POSTFIX, "-c", str(self.conf), "start"], check=True,
                       capture_output=True, timeout=30)
        wait_port(self.ip, self.port)
        return self

    def stop(self) -> None:
        subprocess.run([POSTFIX, "-c", str(self.conf), "stop"], capture_output=True,
                       timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def messages(self, user: str) -> list[bytes]:
        files = glob.glob(str(self.mail / self.domain / user / "new" / "*"))
        files += glob.glob(str(self.mail / self.domain / user / "cur" / "*"))
        return [Path(f).read_bytes() for f in sorted(files)]

    def count(self, user: str) -> int:
        """How many messages the user's Maildir holds (without reading them)."""
        box = self.mail / self.domain / user
        return sum(len(os.listdir(box / d)) for d in ("new", "cur") if (box / d).is_dir())

    def master_pid(self) -> int:
        """The master daemon's pid (its children: smtpd, cleanup, virtual...)."""
        return int((self.root / "q" / "pid" / "master.pid").read_text().split()[0])

    def log(self) -> str:
        try:
            return (self.root / "postfix.log").read_text()
        except FileNotFoundError:
            return ""


def _ids() -> tuple[int, int, int]:
    import grp
    import pwd
    p = pwd.getpwnam("postfix")
    return p.pw_uid, p.pw_gid, grp.getgrnam("postdrop").gr_gid


class Sink:
    """smtp-sink on ip:port, one file per message under ``dir``."""

    def __init__(self, root: Path | None = None, ip: str = "127.0.0.1",
                 port: int | None = None, options: tuple[str, ...] = ()):
        # smtp-sink drops to "nobody", who cannot enter pytest's private tmp tree.
        self.dir = Path(tempfile.mkdtemp(prefix="coremail-sink-"))
        os.chmod(self.dir, 0o777)
        self.ip, self.port = ip, port or free_port(ip)
        self.options = options
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Sink":
        args = [SMTP_SINK, "-d", str(self.dir / "%H%M%S."), "-h", "sink.test", *self.options]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        self.proc = subprocess.Popen([*args, f"{self.ip}:{self.port}", "256"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.ip, self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        wait_port(self.ip, self.port, up=False)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def files(self) -> list[Path]:
        return [p for p in self.dir.iterdir() if p.is_file()]

    def message_ids(self) -> list[str]:
        out = []
        for p in self.files():
            m = re.search(rb"^Message-ID:\s*(<[^>]*>)", p.read_bytes(),
                          re.IGNORECASE | re.MULTILINE)
            if m:
                out.append(m.group(1).decode())
        return out
