"""A private Roundcube (Debian's roundcube-core 1.6) on loopback, the webmail
that bench/webmail_list compares ours with: PHP's built-in web server
(`php -S`, with PHP_CLI_SERVER_WORKERS processes and opcache on) over
Debian's document root, its own config directory (ROUNDCUBE_CONFIG_DIR: the
package's defaults plus a config.inc.php naming a SQLite database, temp and
log directories in one temp dir and the IMAP server to use), so the
system's Roundcube configuration is never read or changed.

`install()` puts the packages in with apt-get when they are missing (root
only; the debconf answer keeps dbconfig from making a database of its own).
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

from tests.support.peers import free_port, wait_port

SHARE = Path("/usr/share/roundcube")
DOCROOT = Path("/var/lib/roundcube/public_html")
DEFAULTS = Path("/etc/roundcube")
PACKAGES = ["roundcube-core", "roundcube-sqlite3", "php8.2-cli", "php8.2-cgi", "php8.2-sqlite3"]


def missing() -> str:
    """Why Roundcube cannot run here, or "" when it can."""
    if not (SHARE / "index.php").exists() or not shutil.which("php"):
        return "roundcube-core and php-cli are not installed"
    mods = subprocess.run(["php", "-m"], capture_output=True, text=True).stdout.lower()
    if "pdo_sqlite" not in mods:
        return "php-sqlite3 is not installed"
    return ""


def install() -> None:
    if not missing():
        return
    subprocess.run(["debconf-set-selections"], input="roundcube-core roundcube/dbconfig-install "
                   "boolean false\n", text=True, check=True, capture_output=True)
    # php8.2-cgi named, so that the "php" package is met without Apache
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
                   check=True, capture_output=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


_CONFIG = """<?php
// a private instance for coremail's benchmark: nothing shared with the system's
$config = [];
$config['db_dsnw'] = 'sqlite:///{root}/roundcube.db?mode=0600';
$config['imap_host'] = '{imap}';
$config['smtp_host'] = '';
$config['des_key'] = '{key}';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['temp_dir'] = '{root}/temp/';
$config['log_dir'] = '{root}/logs/';
$config['login_rate_limit'] = 0;
$config['session_lifetime'] = 120;
$config['enable_spellcheck'] = false;
$config['enable_installer'] = false;
"""


class PrivateRoundcube:
    """`PrivateRoundcube("127.0.0.1:PORT").start()`; `.url`, `.port`, `.stop()`."""

    def __init__(self, imap: str, workers: int = 1, root: Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="roundcube-peer-"))
        self.imap = imap
        self.workers = workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "PrivateRoundcube":
        conf = self.root / "config"
        for sub in ("config", "temp", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for name in ("defaults.inc.php", "mimetypes.php"):
            link = conf / name
            if not link.exists():
                link.symlink_to(DEFAULTS / name)
        (conf / "config.inc.php").write_text(_CONFIG.format(
            root=self.root, imap=self.imap, key=os.urandom(12).hex()[:24]))
        db = sqlite3.connect(self.root / "roundcube.db")
        db.executescript((SHARE / "SQL" / "sqlite.initial.sql").read_text())
        db.close()
        env = {**os.environ, "ROUNDCUBE_CONFIG_DIR": str(conf),
               "PHP_CLI_SERVER_WORKERS": str(self.workers)}
        with open(self.root / "php.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["php", "-d", "opcache.enable_cli=1", "-d", "log_errors=1",
                 "-S", f"127.0.0.1:{self.port}", "-t", str(DOCROOT)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)     # its workers in its process group
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None:
            # the workers do not leave with their parent: end the whole group
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def request(conn: http.client.HTTPConnection, method: str, path: str, body: str | None,
            headers: dict) -> http.client.HTTPResponse:
    """One request; on a kept-alive connection the server has closed since
    (idle too long), once more on a new one, as a browser does."""
    try:
        conn.request(method, path, body, headers)
        return conn.getresponse()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        conn.close()
        conn.request(method, path, body, headers)
        return conn.getresponse()


class RoundcubeClient:
    """One signed-in browser's requests: the sign-in form with its token, the
    session cookies kept as the server renews them, and the request token
    that Roundcube's own script sends with every list request."""

    def __init__(self, port: int, address: str, password: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        form = self._do("GET", "/")[1].decode()
        token = re.search(r'name="_token" value="([^"]+)"', form).group(1)
        body = urllib.parse.urlencode({"_token": token, "_task": "login", "_action": "login",
                                       "_timezone": "UTC", "_url": "", "_user": address,
                                       "_pass": password})
        status, _ = self._do("POST", "/?_task=login", body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302 or "roundcube_sessauth" not in self.cookies:
            raise RuntimeError(f"Roundcube sign-in of {address} failed: {status}")
        page = self._do("GET", "/?_task=mail&_mbox=INBOX")[1].decode()
        self.request_token = re.search(r'"request_token":"([^"]+)"', page).group(1)

    def _do(self, method: str, path: str, body: str | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        r = request(self.conn, method, path, body, h)
        data = r.read()
        for c in r.msg.get_all("Set-Cookie") or []:
            k, _eq, v = c.split(";")[0].partition("=")
            if v in ("-del-", "deleted", ""):
                self.cookies.pop(k.strip(), None)
            else:
                self.cookies[k.strip()] = v
        return r.status, data

    def list_page(self, page: int) -> bytes:
        """One page of INBOX (page 0 is the newest), as Roundcube's list request."""
        status, data = self._do("GET", f"/?_task=mail&_action=list&_mbox=INBOX&_page={page + 1}"
                                "&_remote=1", headers={"X-Roundcube-Request": self.request_token})
        if status != 200 or b"add_message_row" not in data:
            raise RuntimeError(f"Roundcube list page {page}: {status} {data[:200]!r}")
        return data

    @staticmethod
    def message_ids(page: bytes) -> list[str]:
        return [m.decode() for m in re.findall(rb"add_message_row\((\d+),", page)]

    def open(self, uid: str) -> bytes:
        status, data = self._do("GET", f"/?_task=mail&_action=show&_uid={uid}&_mbox=INBOX")
        if status != 200:
            raise RuntimeError(f"Roundcube message {uid}: {status}")
        return data
