"""A private Dovecot 2.3 IMAP server on loopback (Debian's dovecot-imapd), the
reference that imaptest's scripts and stress mix are compared against.

Everything lives under one temp dir: its own dovecot.conf (`dovecot -c FILE`),
base_dir, a passwd-file with plain-text passwords, Maildirs (LAYOUT=fs, so the
hierarchy separator is "/" as imaptest expects) and a log file. The system's
Dovecot and its config are never touched. Needs root (Dovecot's master) and
the dovecot-imapd package; mail is kept as the `nobody` user.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.peers import free_port, wait_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
HAVE_DOVECOT = (os.path.exists(DOVECOT) and os.path.exists("/usr/lib/dovecot/imap")
                and os.geteuid() == 0)
MAIL_USER = "nobody"

_CONF = """\
# a private instance for coremail's tests and benchmarks: nothing shared with the system's
base_dir = {root}/run
state_dir = {root}/state
instance_name = coremail-peer-{port}
protocols = imap
listen = {ip}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {root}/dovecot.log
mail_location = maildir:~/Maildir:LAYOUT=fs
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {ip}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class PrivateDovecot:
    """`PrivateDovecot(users={address: password}).start()`; `.port`, `.stop()`."""

    def __init__(self, users: dict[str, str], root: Path | None = None, ip: str = "127.0.0.1",
                 port: int | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="dovecot-peer-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.users = dict(users)
        self.ip = ip
        self.port = port or free_port(ip)
        self.conf = self.root / "dovecot.conf"

    def _write(self) -> None:
        pw = pwd.getpwnam(MAIL_USER)
        os.chmod(self.root, 0o755)  # the auth process (user dovecot) reads users
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        os.chown(mail, pw.pw_uid, pw.pw_gid)
        self.conf.write_text(_CONF.format(root=self.root, ip=self.ip, port=self.port,
                                          uid=pw.pw_uid, gid=pw.pw_gid))
        (self.root / "users").write_text(
            "".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        os.chmod(self.root / "users", 0o644)

    def start(self) -> "PrivateDovecot":
        self._write()
        # the daemons inherit our descriptors: no pipes here, or this never returns
        with open(self.root / "start.err", "wb") as err:
            rc = subprocess.run([DOVECOT, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err, timeout=30).returncode
        if rc:
            raise RuntimeError(f"dovecot did not start: {(self.root / 'start.err').read_text()}")
        wait_port(self.ip, self.port)
        return self

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "run" / "master.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self, remove: bool = True) -> None:
        pid = self.master_pid()
        subprocess.run([DOVECOT, "-c", str(self.conf), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        deadline = time.monotonic() + 15
        while pid and time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
        wait_port(self.ip, self.port, up=False)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
