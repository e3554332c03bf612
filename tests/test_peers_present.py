"""`make test` installs the real peers the suite talks to; without them those
tests would skip and prove nothing. Under `make test` (COREMAIL_REQUIRE_PEERS=1)
a missing one is a failure that names the package, not a quiet skip."""
import glob
import os
import shutil

import pytest

PEERS = {  # program -> Debian package
    "swaks": "swaks", "postfix": "postfix", "smtp-sink": "postfix", "smtp-source": "postfix",
    "fetchmail": "fetchmail", "mbsync": "isync", "curl": "curl",
    "clamd": "clamav-daemon", "clamav-milter": "clamav-milter", "sigtool": "clamav",
}


@pytest.mark.skipif(os.environ.get("COREMAIL_REQUIRE_PEERS") != "1",
                    reason="only enforced under `make test`")
def test_every_peer_program_is_installed():
    missing = sorted({pkg for prog, pkg in PEERS.items()
                      if shutil.which(prog) is None and not os.path.exists(f"/usr/sbin/{prog}")})
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        missing.append("postgresql")
    assert not missing, f"missing Debian packages: {' '.join(missing)} (`make test-deps` installs them)"
