"""DKIM-signing a message as it leaves (RFC 6376 with dkimpy): relaxed/relaxed,
the RFC's recommended header fields, the singletons (From first) oversigned
so that none can be added later, one RSA and one Ed25519 signature (RFC
8463). The signing domain is the author's (From) domain or its nearest local
parent, so DMARC aligns; for mail whose author is elsewhere (a forward, an
SRS sender) it is the envelope sender's. Blocking: run it in a thread.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import dkim

from .author import author_domain
from .dkimkeys import DkimKey, KEY_DIR, list_keys
from .headers import header_section

OVERSIGNED = (b"from", b"sender", b"reply-to", b"subject", b"date", b"to", b"cc",
              b"message-id")


def _candidates(domain: str | None) -> list[str]:
    """The domain and its parents, longest first, never a bare top-level name."""
    if not domain:
        return []
    labels = domain.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def sign_with(data: bytes, keys: list[DkimKey]) -> bytes:
    """``data`` with a DKIM-Signature per key on top."""
    d = dkim.DKIM(data, linesep=b"\r\n")
    d.add_frozen(OVERSIGNED)
    headers = d.default_sign_headers()
    sigs = [d.sign(k.selector.encode(), k.domain.encode(), k.signing_key(),
                   signature_algorithm=k.algorithm, canonicalize=(b"relaxed", b"relaxed"),
                   include_headers=headers) for k in keys]
    return b"".join(sigs) + data


class DkimSigner:
    """The signing keys of a home, re-read when a domain's `active` file
    changes (a rotation takes effect without a restart)."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self._cache: dict[str, tuple[tuple, list[DkimKey]]] = {}

    def keys(self, domain: str) -> list[DkimKey]:
        try:
            st = os.stat(self.home / KEY_DIR / domain / "active")
            stamp: tuple = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            return []
        hit = self._cache.get(domain)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        keys = [k for k in list_keys(self.home, domain) if k.active]
        self._cache[domain] = (stamp, keys)
        return keys

    def domain_for(self, data: bytes, sender: str, is_local: Callable[[str], bool]) -> str | None:
        header = header_section(data) or b""
        envelope = sender.rpartition("@")[2] if "@" in sender else None
        for name in _candidates(author_domain(header)) + _candidates(envelope):
            if is_local(name) and self.keys(name):
                return name
        return None

    def sign(self, data: bytes, sender: str, is_local: Callable[[str], bool]) -> bytes:
        """The message signed for the first local domain of its author or
        sender that has keys, else unchanged."""
        domain = self.domain_for(data, sender, is_local)
        if domain is None:
            return data
        return sign_with(data, self.keys(domain))
