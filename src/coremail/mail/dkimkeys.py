"""The DKIM keys of each local domain, as files under the home's conf/:
`conf/dkim/DOMAIN/SELECTOR.key` (PKCS#8 PEM, RSA 2048 or Ed25519) and
`conf/dkim/DOMAIN/active`, the selectors that sign now (one RSA and one
Ed25519, RFC 8463). Rotation writes a new pair and makes it active; the old
selectors stay (and stay published) until removed, so mail signed with them
still verifies while it is in flight. Key generation is `cryptography`'s;
only the file layout is ours.
"""
from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

KEY_DIR = Path("conf") / "dkim"
_SELECTOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RSA_BITS = 2048


class DkimKeyError(Exception):
    """A key problem worded for an administrator."""


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    kind: str            # "rsa" or "ed25519"
    pem: bytes
    active: bool

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if self.kind == "rsa" else b"ed25519-sha256"

    def signing_key(self) -> bytes:
        """The private key as dkimpy takes it: PEM for RSA, the base64 seed for Ed25519."""
        if self.kind == "rsa":
            return self.pem
        key = serialization.load_pem_private_key(self.pem, None)
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        return base64.b64encode(raw)

    def public_b64(self) -> str:
        """The p= value of the DNS record (RFC 6376 3.6.1; RFC 8463 4 for Ed25519)."""
        pub = serialization.load_pem_private_key(self.pem, None).public_key()
        if self.kind == "rsa":
            der = pub.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        else:
            der = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(der).decode("ascii")

    def record(self) -> str:
        """The TXT value to publish at SELECTOR._domainkey.DOMAIN."""
        return f"v=DKIM1; k={self.kind}; p={self.public_b64()}"


def _domain_dir(home: Path, domain: str) -> Path:
    domain = domain.strip().lower().rstrip(".")
    if not domain or "/" in domain or domain.startswith("."):
        raise DkimKeyError(f"bad domain {domain!r}")
    return Path(home) / KEY_DIR / domain


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _new_pem(kind: str) -> bytes:
    key = (rsa.generate_private_key(65537, RSA_BITS) if kind == "rsa"
           else ed25519.Ed25519PrivateKey.generate())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _kind_of(pem: bytes) -> str:
    key = serialization.load_pem_private_key(pem, None)
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise DkimKeyError("a DKIM key must be RSA or Ed25519")


def active_selectors(home: Path, domain: str) -> list[str]:
    try:
        text = (_domain_dir(home, domain) / "active").read_text()
    except FileNotFoundError:
        return []
    return [s for s in text.split() if _SELECTOR.match(s)]


def list_keys(home: Path, domain: str) -> list[DkimKey]:
    """Every key of the domain, the signing ones first."""
    d = _domain_dir(home, domain)
    active = active_selectors(home, domain)
    out = []
    for path in sorted(d.glob("*.key")) if d.is_dir() else []:
        pem = path.read_bytes()
        out.append(DkimKey(d.name, path.stem, _kind_of(pem), pem, path.stem in active))
    out.sort(key=lambda k: (not k.active, k.kind != "rsa", k.selector))
    return out


def _fresh_base(d: Path, now: float) -> str:
    base = "cm" + time.strftime("%Y%m%d", time.gmtime(now))
    for n in range(0, 26):
        tag = base + ("" if n == 0 else chr(ord("a") + n))
        if not any((d / f"{tag}{k}.key").exists() for k in ("r", "e")):
            return tag
    raise DkimKeyError("too many key rotations today; try again tomorrow")


def create_keys(home: Path, domain: str, *, now: float | None = None) -> list[DkimKey]:
    """A new RSA and Ed25519 pair under new selectors, made the signing ones.
    Earlier keys stay until `remove_key`."""
    d = _domain_dir(home, domain)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d.parent, 0o700)
    base = _fresh_base(d, time.time() if now is None else now)
    selectors = []
    for kind, suffix in (("rsa", "r"), ("ed25519", "e")):
        sel = base + suffix
        _write(d / f"{sel}.key", _new_pem(kind))
        selectors.append(sel)
    _write(d / "active", ("\n".join(selectors) + "\n").encode(), 0o644)
    return [k for k in list_keys(home, domain) if k.active]


def ensure_keys(home: Path, domain: str) -> list[DkimKey]:
    """The signing keys, made first if the domain has none (init, domain add)."""
    keys = [k for k in list_keys(home, domain) if k.active]
    return keys or create_keys(home, domain)


def remove_key(home: Path, domain: str, selector: str) -> None:
    d = _domain_dir(home, domain)
    if not _SELECTOR.match(selector) or not (d / f"{selector}.key").exists():
        raise DkimKeyError(f"{domain} has no DKIM key with selector {selector!r}")
    if selector in active_selectors(home, domain):
        raise DkimKeyError(f"{selector} still signs the mail of {domain}; rotate first "
                           f"(coremail dns rotate {domain}), then remove the old selector")
    (d / f"{selector}.key").unlink()
