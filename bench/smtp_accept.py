#!/usr/bin/env python3
"""SMTP acceptance, coremail against Postfix, in one run on this machine.

Sets up Postfix on 127.0.0.1:25 with ../shared/bench/setup_peers.sh (unless it
already listens), makes a throw-away coremail home with the smtp service on
another port (run by `python -m coremail.supervisor.runner smtp`, the same
runner `coremail start` uses, with workers.smtp processes), then measures with
smtp-source through the shared smtp_accept.py at c=1 and c=20, 10 KB and
100 KiB, alternating Postfix and coremail (A B A B ...) so drift hits both.
Every message is fsync'ed before its 250 on both sides. Prints one line per
cell and a final summary line with msgs/s for both and the ratio.

    .venv/bin/python bench/smtp_accept.py [--pairs 3] [--port 2525] [--quick]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("COREMAIL_SHARED_BENCH", ROOT.parent / "shared" / "bench"))
PY = sys.executable


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def setup_postfix(force: bool) -> None:
    script = SHARED / "setup_peers.sh"
    if not shutil.which("postfix") and not Path("/usr/sbin/postfix").exists():
        subprocess.run(["bash", str(script), "install"], check=True)
    if listening(25) and not force:
        return
    subprocess.run(["bash", str(script), "configure"], check=True)
    subprocess.run(["bash", str(script), "start"], check=True)
    for _ in range(50):
        if listening(25):
            return
        time.sleep(0.2)
    raise SystemExit("postfix did not start on 127.0.0.1:25")


def start_coremail(home: Path, port: int, workers: int) -> subprocess.Popen:
    sys.path.insert(0, str(ROOT / "src"))
    from coremail.services.accounts import Accounts
    from coremail.services.home import init_home
    from coremail.services.settings import set_value
    from coremail.store import open_store
    from coremail.config import load_settings

    init_home(home, "example.test", admin_password="bench-admin-1", privileged=False)
    for key, value in (("listen.address", '"127.0.0.1"'), ("listen.smtp", str(port)),
                       ("listen.submission", "0"), ("listen.smtps", "0"),
                       ("workers.smtp", str(workers)), ("log.level", '"warning"')):
        set_value(home, key, value)
    store = open_store(home, load_settings(home))
    acc = Accounts(store, "example.test", 0)
    for i in range(1, 11):
        acc.add_user(f"user{i}@example.test", "benchpass", quota=0)
    acc.add_user("sender@example.test", "benchpass", quota=0)
    store.close()
    log = open(home / "logs" / "smtp.log", "ab")
    proc = subprocess.Popen([PY, "-m", "coremail.supervisor.runner", "smtp", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
    line = proc.stdout.readline().decode()
    if '"ok": true' not in line:
        proc.kill()
        raise SystemExit(f"coremail smtp did not start: {line.strip()}")
    return proc


def measure(port: int, conc: int, size: int, n: int) -> dict[str, str]:
    out = subprocess.run([PY, str(SHARED / "smtp_accept.py"), "--host", "127.0.0.1",
                          "--port", str(port), "-c", str(conc), "-s", str(size), "-n", str(n),
                          "--engine", "smtp-source", "--to", "user1@example.test",
                          "--timeout", "600"],
                         capture_output=True, text=True, timeout=900)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("smtp_accept ")]
    if not lines:
        raise SystemExit(f"smtp_accept.py failed on port {port}:\n{out.stdout}\n{out.stderr}")
    return dict(re.findall(r"(\w+)=(\S+)", lines[-1]))


def clean_postfix_mail() -> None:
    subprocess.run(["bash", str(SHARED / "setup_peers.sh"), "clean-mail"],
                   capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--pairs", type=int, default=3, help="A/B pairs per cell")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer messages per run")
    ap.add_argument("--reconfigure-postfix", action="store_true")
    ap.add_argument("--cells", default="1x10240,20x10240,1x102400,20x102400",
                    help="CONCURRENCYxSIZE,... to measure")
    a = ap.parse_args()

    setup_postfix(a.reconfigure_postfix)
    home = Path(tempfile.mkdtemp(prefix="coremail-bench-"))
    proc = start_coremail(home, a.port, a.workers)
    summary = []
    try:
        for cell in a.cells.split(","):
            conc, size = (int(x) for x in cell.split("x"))
            n = (200 if conc == 1 else 1000) if size <= 20000 else (150 if conc == 1 else 600)
            if a.quick:
                n //= 3
            ours, theirs, ratios = [], [], []
            measure(a.port, conc, size, max(20, n // 10))   # warm-up, untimed
            for _ in range(a.pairs):
                clean_postfix_mail()
                p = float(measure(25, conc, size, n)["msgs_per_s"])
                o = float(measure(a.port, conc, size, n)["msgs_per_s"])
                theirs.append(p)
                ours.append(o)
                ratios.append(o / p)
            med = (statistics.median(ours), statistics.median(theirs), statistics.median(ratios))
            print(f"smtp_accept_cell c={conc} size={size} n={n} coremail={med[0]:.0f} "
                  f"postfix={med[1]:.0f} ratio={med[2]:.2f} pairs="
                  + ",".join(f"{r:.2f}" for r in ratios), flush=True)
            summary.append(f"c{conc}_{size // 1024}k={med[0]:.0f}/{med[1]:.0f}/{med[2]:.2f}x")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        clean_postfix_mail()
        shutil.rmtree(home, ignore_errors=True)
    print("smtp_accept coremail/postfix/ratio " + " ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
