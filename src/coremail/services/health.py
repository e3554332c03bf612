"""What the webadmin's dashboard (and doctor) says about the machine: free
space and free inodes of the data directory, with a warning well before
either runs out (the seed's "inodes full" case), and the TLS certificate's
expiry. Blocking (statvfs, a file read): call from a thread."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..proto.tls import CERT_NAME

# Below these shares free, the dashboard warns (and every page says so).
WARN_FREE = 0.10
WARN_DAYS = 21


@dataclass(frozen=True)
class DiskState:
    path: str
    free_bytes: int
    total_bytes: int
    free_inodes: int
    total_inodes: int

    @property
    def bytes_share(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 1.0

    @property
    def inodes_share(self) -> float:
        # Some file systems (btrfs) report no inode limit at all.
        return self.free_inodes / self.total_inodes if self.total_inodes else 1.0

    @property
    def low_space(self) -> bool:
        return self.bytes_share < WARN_FREE

    @property
    def low_inodes(self) -> bool:
        return self.inodes_share < WARN_FREE


@dataclass(frozen=True)
class CertState:
    subject: str
    not_after: float
    error: str = ""

    @property
    def days_left(self) -> float:
        return (self.not_after - time.time()) / 86400

    @property
    def warn(self) -> bool:
        return bool(self.error) or self.days_left < WARN_DAYS


def disk(data_dir: Path) -> DiskState:
    st = os.statvfs(data_dir)
    return DiskState(str(data_dir), st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize,
                     st.f_favail, st.f_files)


def certificate(tls_dir: Path) -> CertState:
    path = Path(tls_dir) / CERT_NAME
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        return CertState("", 0.0, f"cannot read {path.name}: {e}")
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return CertState(str(names[0].value) if names else cert.subject.rfc4514_string(),
                     cert.not_valid_after_utc.timestamp())
