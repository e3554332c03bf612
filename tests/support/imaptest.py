"""Dovecot's imaptest (built by `make imaptest` into .venv/imaptest, or wherever
$IMAPTEST_BUILD points): find it, run one of its scripts or its stress mix
against a server, and read what it printed.

Scripts: one imaptest process per script; the verdict comes from its summary
line ("N test groups: F failed, S skipped due to missing capabilities") and
the failure blocks it writes to stderr ("*** Test NAME command i/n (line L)").
Stress: `output=FILE` gives per-second counts and summed latencies per
command type; error lines ("Error: ...") are imaptest's protocol errors and
the inconsistencies it saw between sessions.
"""
from __future__ import annotations

import os
import random
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("IMAPTEST_BUILD") or ROOT / ".venv" / "imaptest").resolve()
BINARY = BUILD / "bin" / "imaptest"
SCRIPTS = BUILD / "tests"

# imaptest's short column names (client-state.c) -> the command names it counts
SHORT = {"Auth": "AUTHENTICATE", "Logi": "LOGIN", "List": "LIST", "MCre": "MCREATE",
         "MDel": "MDELETE", "MSub": "MSUBS", "Stat": "STATUS", "Sele": "SELECT",
         "UIDF": "UIDFETCH", "Fetc": "FETCH", "Fet2": "FETCH2", "Sear": "SEARCH",
         "Sort": "SORT", "Thre": "THREAD", "Copy": "COPY", "Stor": "STORE", "Dele": "DELETE",
         "Expu": "EXPUNGE", "Appe": "APPEND", "Noop": "NOOP", "Chec": "CHECK",
         "Logo": "LOGOUT", "Disc": "DISCONNECT", "Dela": "DELAY", "ChkP": "CHECKPOINT",
         "LMTP": "LMTP"}


def available() -> bool:
    return BINARY.exists() and SCRIPTS.is_dir()


def scripts(folder: Path = SCRIPTS) -> list[str]:
    """The suite's scripts: every file in tests/ but the .mbox fixtures."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith(".mbox"))


# ------------------------------------------------------------------ scripts
SUMMARY = re.compile(r"(\d+) test groups: (\d+) failed, (\d+) skipped")
FAILURE = re.compile(r"^\*\*\* Test .*?(?=^\*\*\* Test |\Z)", re.M | re.S)


@dataclass
class ScriptResult:
    script: str
    status: str          # "pass", "fail", "skip" (imaptest: missing capability) or "error"
    groups: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)  # imaptest's failure blocks
    output: str = ""

    def first_failure(self, width: int = 400) -> str:
        """The first failure block on one line."""
        text = self.failures[0] if self.failures else self.output
        return " | ".join(ln.strip() for ln in text.strip().splitlines() if ln.strip())[:width]


def run_script(script: str, port: int, user: str, password: str, user2: str | None = None,
               host: str = "127.0.0.1", timeout: float = 60, folder: Path = SCRIPTS,
               binary: Path = BINARY, rawlog_dir: Path | None = None) -> ScriptResult:
    """With rawlog_dir, imaptest writes each connection's traffic there (rawlog.N)."""
    cmd = [str(binary), f"host={host}", f"port={port}", f"user={user}", f"pass={password}",
           f"test={folder / script}"]
    if user2:
        cmd.append(f"user2={user2}")
    if rawlog_dir is not None:
        rawlog_dir.mkdir(parents=True, exist_ok=True)
        cmd.append("rawlog")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                             timeout=timeout, stdin=subprocess.DEVNULL, cwd=rawlog_dir)
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return ScriptResult(script, "error", output=f"timed out after {timeout}s\n{text}")
    text = out.stdout + out.stderr
    m = SUMMARY.search(out.stdout)
    failures = FAILURE.findall(out.stderr)
    if not m:
        return ScriptResult(script, "error", failures=failures, output=text)
    groups, failed, skipped = (int(x) for x in m.groups())
    if failed or failures or out.returncode not in (0,):
        status = "fail"
    elif groups and skipped == groups:
        status = "skip"
    else:
        status = "pass"
    return ScriptResult(script, status, groups, failed, skipped, failures, text)


# ------------------------------------------------------------------ stress
@dataclass
class StressResult:
    secs: int                               # per-second rows measured
    counts: dict[str, int]                  # command -> how many in those rows
    mean_ms: dict[str, float]               # command -> mean latency
    errors: list[str]                       # imaptest's "Error:" lines
    stdout: str = ""

    @property
    def commands(self) -> int:
        return sum(self.counts.values())

    @property
    def cmds_per_s(self) -> float:
        return self.commands / max(1, self.secs)


def write_mbox(path: Path, count: int = 60, seed: int = 1) -> Path:
    """A CRLF mbox of plain and multipart messages, 1-40 KiB, for imaptest's APPENDs."""
    rnd = random.Random(seed)
    words = ("mail server imap fetch store expunge append lorem ipsum dolor sit amet "
             "quick brown fox jumps over the lazy dog").split()
    out = []
    for i in range(count):
        lines = [" ".join(rnd.choice(words) for _ in range(11)) for _ in range(rnd.randint(10, 500))]
        text = "\r\n".join(lines)
        head = (f"From sender{i % 7}@example.test Wed Nov 25 12:{i % 60:02d}:00 2026\r\n"
                f"From: Sender {i % 7} <sender{i % 7}@example.test>\r\n"
                f"To: Someone <someone@example.test>\r\nSubject: imaptest message {i}\r\n"
                f"Message-ID: <{i}.{seed}@imaptest.example.test>\r\n"
                f"Date: Wed, 25 Nov 2026 12:{i % 60:02d}:00 +0000\r\nMIME-Version: 1.0\r\n")
        if i % 3:
            body = f"Content-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n"
        else:
            blob = "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/") for _ in range(76))
            body = (f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n'
                    f"--b{i}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n"
                    f"--b{i}\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\n"
                    f"Content-Transfer-Encoding: base64\r\n\r\n"
                    + (blob + "\r\n") * rnd.randint(5, 100) + f"--b{i}--\r\n")
        out.append(head + body + "\r\n")
    path.write_bytes("".join(out).encode())
    return path


def parse_stress(stdout: str, results: str, stderr: str) -> StressResult:
    """Counts and latencies from the output= file (one row per second: count,
    timed count, summed msecs for each column of imaptest's stdout header)."""
    header = next((ln.split() for ln in stdout.splitlines() if ln.startswith("Logi ")
                   or ln.startswith("Auth ")), [])
    names = [SHORT.get(h, h) for h in header]
    counts = dict.fromkeys(names, 0)
    timed = dict.fromkeys(names, 0)
    msecs = dict.fromkeys(names, 0)
    rows = 0
    for line in results.splitlines()[1:]:
        vals = line.split("\t")
        if len(vals) != 3 * len(names):
            continue
        rows += 1
        for i, name in enumerate(names):
            counts[name] += int(vals[3 * i])
            timed[name] += int(vals[3 * i + 1])
            msecs[name] += int(vals[3 * i + 2])
    mean = {n: msecs[n] / timed[n] for n in names if timed[n]}
    errors = [ln for ln in stderr.splitlines() if "Error:" in ln or "Panic:" in ln or "Fatal:" in ln]
    return StressResult(rows, counts, mean, errors, stdout)


def run_stress(port: int, user: str, password: str, mbox: Path, results: Path, clients: int = 10,
               secs: int = 20, host: str = "127.0.0.1", extra: tuple[str, ...] = (),
               binary: Path = BINARY) -> StressResult:
    cmd = [str(binary), f"host={host}", f"port={port}", f"user={user}", f"pass={password}",
           f"mbox={mbox}", f"clients={clients}", f"secs={secs},10", f"output={results}", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                         timeout=secs + 120, stdin=subprocess.DEVNULL)
    return parse_stress(out.stdout, results.read_text(), out.stderr)
