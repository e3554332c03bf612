"""OpenDKIM (Debian's opendkim and opendkim-tools) as the independent DKIM
peer: `opendkim -t` verifies a message, its keys given as TestDNSData (the
TXT records `coremail dns` prints), or signs one with a key file."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
HAVE_OPENDKIM = Path(OPENDKIM).exists()


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
    """``message`` with the DKIM-Signature that `opendkim -t` makes for it
    (rsa-sha256, relaxed/simple: OpenDKIM's own choices)."""
    with tempfile.TemporaryDirectory(prefix="coremail-odk-") as d:
        root = Path(d)
        (root / "key").write_bytes(key_pem)
        (root / "conf").write_text(f"Mode s\nRequireSafeKeys false\nDomain {domain}\n"
                                   f"Selector {selector}\nKeyFile {root / 'key'}\n"
                                   "Canonicalization relaxed/simple\n")
        (root / "msg").write_bytes(message)
        p = subprocess.run([OPENDKIM, "-x", str(root / "conf"), "-t", str(root / "msg")],
                           capture_output=True, text=True, timeout=30)
    # It prints the field it would add: "opendkim: FILE:" then "DKIM-Signature: ...".
    m = re.search(r"(?s)^DKIM-Signature: .*", p.stdout + p.stderr, re.MULTILINE)
    if m is None:
        raise AssertionError(f"opendkim did not sign: {p.stdout} {p.stderr}")
    field = m.group(0).rstrip().replace("\r\n", "\n").replace("\n", "\r\n")
    return field.encode() + b"\r\n" + message
