"""A private ClamAV clamd for the tests and benchmarks: Debian's clamav-daemon
binary with its own configuration, Unix socket, TCP port and a one-line
signature database written here (the EICAR test string as an .ndb body
signature: no signature download is possible or wanted), run in the
foreground as a child of the test. Debian's own clamd/freshclam services
are neither used nor touched (their socket is under /run/clamav).

`Silent`: a Unix socket that accepts connections and never answers, for
the time-out tests.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
HAVE_CLAMD = os.path.exists(CLAMD)
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
SIGNATURE = "Coremail-Test-EICAR"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateClamd:
    def __init__(self, root: Path | None = None, *, stream_max: str = "25M",
                 threads: int = 12, user: str | None = None):
        # clamd may run as another user (the milter's); the tree must be reachable
        self.root = Path(root or tempfile.mkdtemp(prefix="coremail-clamd-"))
        os.chmod(self.root, 0o755)
        self.socket = self.root / "clamd.sock"
        self.port = free_port()
        self.stream_max = stream_max
        self.threads = threads
        self.user = user
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"unix:{self.socket}"

    @property
    def tcp(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write(self) -> Path:
        db = self.root / "db"
        db.mkdir(exist_ok=True)
        (db / "coremail-test.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
        conf = self.root / "clamd.conf"
        lines = [
            "Foreground yes", f"LocalSocket {self.socket}", "LocalSocketMode 666",
            f"TCPSocket {self.port}", "TCPAddr 127.0.0.1", f"DatabaseDirectory {db}",
            f"LogFile {self.root / 'clamd.log'}", f"PidFile {self.root / 'clamd.pid'}",
            f"StreamMaxLength {self.stream_max}", f"MaxThreads {self.threads}",
            "IdleTimeout 30", "SelfCheck 0", "ScanMail yes", "ScanArchive yes",
        ]
        if self.user:
            lines.append(f"User {self.user}")
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 60) -> "PrivateClamd":
        conf = self._write()
        self.proc = subprocess.Popen([CLAMD, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clamd exited: {self.log()[-2000:]}")
            if self.ping():
                return self
            time.sleep(0.1)
        raise TimeoutError("clamd did not answer PING")

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(b"zPING\0")
                return s.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.root / "clamd.log").read_text()
        except FileNotFoundError:
            return ""


class Silent:
    """Accepts on a Unix socket, reads whatever comes, never answers."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self.accepted = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> str:
        return f"unix:{self.path}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.conns.append(c)
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    @staticmethod
    def _drain(c: socket.socket) -> None:
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._stop = True
        for c in self.conns:
            c.close()
        self.sock.close()
