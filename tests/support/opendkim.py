"""OpenDKIM (Debian's opendkim and opendkim-tools) as the independent DKIM
peer: `opendkim -t` verifies a message, its keys given as TestDNSData (the
TXT records `coremail dns` prints), and `opendkim-testmsg` signs one."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
TESTMSG = shutil.which("opendkim-testmsg") or "/usr/sbin/opendkim-testmsg"
HAVE_OPENDKIM = Path(OPENDKIM).exists() and Path(TESTMSG).exists()


def opendkim_verify(message: bytes, records: dict[str, str]) -> list[str]:
    """The dkim= results OpenDKIM puts in its Authentication-Results, one per
    signature ("pass", "fail", ...), each with its header.s= selector."""
    with tempfile.TemporaryDirectory(prefix="coremail-odk-") as d:
        root = Path(d)
        (root / "dns").write_text("".join(f"{n} {v}\n" for n, v in records.items()))
        (root / "conf").write_text(f"TestDNSData {root / 'dns'}\nMode v\n")
        (root / "msg").write_bytes(message)
        p = subprocess.run([OPENDKIM, "-x", str(root / "conf"), "-t", str(root / "msg"), "-vvv"],
                           capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    return [f"{m.group(1)} {m.group(2)}" for m in
            re.finditer(r"dkim=(\w+)[^;]*?header\.a=\S+ header\.s=(\S+)", out)]


def opendkim_sign(message: bytes, domain: str, selector: str, key_pem: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="coremail-odk-") as d:
        key = Path(d) / "key"
        key.write_bytes(key_pem)
        p = subprocess.run([TESTMSG, "-C", "-d", domain, "-s", selector, "-k", str(key)],
                           input=message, capture_output=True, timeout=30, check=True)
    return p.stdout
