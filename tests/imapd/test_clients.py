"""Real clients from Debian against the service: mbsync (isync) syncing both
ways, and curl's imap:// URLs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import PASSWORD
from .test_messages import msg

needs_mbsync = pytest.mark.skipif(shutil.which("mbsync") is None, reason="isync is not installed")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def mbsync(imap, tmp_path: Path, who: str) -> subprocess.CompletedProcess:
    local = tmp_path / "mail"
    local.mkdir(exist_ok=True)
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount t
Host 127.0.0.1
Port {imap.port}
User {who}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account t

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel c
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    return subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=60)


def plain(data: bytes) -> bytes:
    """A message as compared across the sync: mbsync writes LF and adds X-TUID."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    return b"\n".join(ln for ln in lines if not ln.startswith(b"X-TUID:"))


def maildir_files(folder: Path) -> list[Path]:
    return sorted(p for sub in ("cur", "new") for p in (folder / sub).glob("*"))


@needs_mbsync
def test_mbsync_syncs_both_ways(imap, alice, tmp_path):
    for i in range(1, 4):
        imap.deliver(alice, msg(i))
    imap.deliver(alice, msg(9), folder="Sent", flags={"\\Seen"})
    r = mbsync(imap, tmp_path, alice)
    assert r.returncode == 0, r.stderr
    inbox = tmp_path / "mail" / "INBOX"
    files = maildir_files(inbox)
    assert len(files) == 3 and len(maildir_files(tmp_path / "mail" / "Sent")) == 1
    assert sorted(plain(f.read_bytes()) for f in files) == sorted(plain(msg(i)) for i in range(1, 4))
    # locally: flag one message, delete another, add a new one
    by_body = {plain(f.read_bytes()): f for f in files}
    flagged = by_body[plain(msg(1))]
    flagged.rename(inbox / "cur" / (flagged.name.split(":2,")[0] + ":2,FS"))
    deleted = by_body[plain(msg(2))]
    deleted.rename(inbox / "cur" / (deleted.name.split(":2,")[0] + ":2,ST"))
    (inbox / "new" / "local-1.host").write_bytes(msg(42))
    r = mbsync(imap, tmp_path, alice)
    assert r.returncode == 0, r.stderr
    remote = {m.uid: m.flags for m in imap.messages(alice)}
    assert remote[1] == {"\\Flagged", "\\Seen"}
    assert 2 not in remote  # deleted locally, expunged on the server
    assert len(remote) == 3  # 1, 3 and the uploaded one
    # and back: a change on the server reaches the maildir
    c = imap.client(alice)
    c.select("INBOX")
    c.uid("STORE", "3", "+FLAGS", "(\\Answered)")
    c.logout()
    r = mbsync(imap, tmp_path, alice)
    assert r.returncode == 0, r.stderr
    names = [f.name for f in maildir_files(inbox) if plain(f.read_bytes()) == plain(msg(3))]
    assert names and "R" in names[0].split(":2,")[1]


@needs_curl
def test_curl_lists_fetches_and_searches(imap, alice):
    imap.deliver(alice, msg(1))
    imap.deliver(alice, msg(2))
    base = f"imap://127.0.0.1:{imap.port}"
    auth = ["-u", f"{alice}:{PASSWORD}", "-s", "--max-time", "20"]
    out = subprocess.run(["curl", *auth, base + "/"], capture_output=True, text=True)
    assert out.returncode == 0 and "INBOX" in out.stdout and "Trash" in out.stdout
    out = subprocess.run(["curl", *auth, base + "/INBOX;UID=2"], capture_output=True)
    assert out.returncode == 0 and out.stdout == msg(2)
    out = subprocess.run(["curl", *auth, base + "/INBOX", "-X", "SEARCH SUBJECT \"number 1\""],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "SEARCH 1" in out.stdout
