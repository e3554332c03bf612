"""QRESYNC (RFC 7162 3.2) with imaplib and over a raw socket: ENABLE, SELECT
with QRESYNC parameters (VANISHED (EARLIER) before the changed messages'
FETCH, limited to the known UIDs), UID FETCH with CHANGEDSINCE and VANISHED,
VANISHED instead of EXPUNGE once enabled, the HIGHESTMODSEQ of an EXPUNGE,
[CLOSED] on a second SELECT, and the fall-back once the store's record of
expunges has been trimmed."""
from __future__ import annotations

import re
import time

from .conftest import PASSWORD
from .test_messages import fill
from .test_rfc3501 import Raw


def _state(imap, alice) -> tuple[int, int]:
    """(uidvalidity, highestmodseq) of alice's INBOX as a client caches it."""
    c = imap.client(alice)
    c.select("INBOX")
    state = int(c.response("UIDVALIDITY")[1][0]), int(c.response("HIGHESTMODSEQ")[1][0])
    c.logout()
    return state


def _change_elsewhere(imap, alice) -> None:
    """Another session: \\Seen on UID 2, UIDs 3 and 4 expunged."""
    c = imap.client(alice)
    c.select("INBOX")
    c.uid("STORE", "2", "+FLAGS", "(\\Seen)")
    c.uid("STORE", "3:4", "+FLAGS", "(\\Deleted)")
    assert c.expunge()[0] == "OK"
    c.logout()


def _qresync(imap, alice) -> Raw:
    c = Raw(imap.port).login(alice)
    assert c.cmd("e", "ENABLE QRESYNC") == b"* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n"
    return c


def test_qresync_is_advertised_and_enabled_with_imaplib(imap, alice):
    c = imap.client(alice)
    assert "QRESYNC" in c.capabilities
    typ, data = c._simple_command("ENABLE", "QRESYNC")
    assert typ == "OK" and c.untagged_responses.pop("ENABLED") == [b"QRESYNC"]
    c.logout()


def _cached_then_changed(imap, alice) -> tuple[int, int, Raw]:
    """Six messages cached by a client at (uidvalidity, modseq), then changed
    elsewhere; a QRESYNC-enabled connection to catch up on."""
    fill(imap, alice, 6)
    validity, modseq = _state(imap, alice)
    _change_elsewhere(imap, alice)
    return validity, modseq, _qresync(imap, alice)


def test_select_with_qresync_tells_what_vanished_then_what_changed(imap, alice):
    validity, modseq, c = _cached_then_changed(imap, alice)
    got = c.cmd("s", f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
    assert b"* 4 EXISTS\r\n" in got and b"s OK [READ-WRITE]" in got
    assert b"* VANISHED (EARLIER) 3:4\r\n" in got
    fetch = re.search(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)\r\n", got)
    assert fetch and int(fetch.group(1)) > modseq
    assert got.index(b"VANISHED") < got.index(b"FETCH")       # RFC 7162 3.2.5.1: before
    assert got.count(b" FETCH ") == 1
    # known UIDs limit both; another UIDVALIDITY is a full resync (nothing extra)
    got = c.cmd("k", f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:2))")
    assert b"* OK [CLOSED]" in got.split(b"\r\n")[0]             # about the old mailbox
    assert b"VANISHED" not in got and b"UID 2 FLAGS" in got
    got = c.cmd("v", f"EXAMINE INBOX (QRESYNC ({validity + 1} {modseq}))")
    assert b"VANISHED" not in got and b"FETCH" not in got and b"v OK [READ-ONLY]" in got
    c.close()


def test_qresync_parameters_without_enable_are_bad(imap, alice):
    c = Raw(imap.port).login(alice)
    assert c.cmd("s", "SELECT INBOX (QRESYNC (1 1))").startswith(b"s BAD ")
    c.cmd("s2", "SELECT INBOX")
    assert c.cmd("f", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").startswith(b"f BAD ")
    c.close()


def test_uid_fetch_changedsince_vanished(imap, alice):
    _, modseq, c = _cached_then_changed(imap, alice)
    c.cmd("s", "SELECT INBOX")
    got = c.cmd("f", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    lines = got.split(b"\r\n")
    assert lines[0] == b"* VANISHED (EARLIER) 3:4"
    assert re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", lines[1])
    assert lines[2].startswith(b"f OK") and len(lines) == 4
    got = c.cmd("g", f"UID FETCH 4:6 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert got.startswith(b"* VANISHED (EARLIER) 4\r\n")
    c.close()


def test_vanished_replaces_expunge_once_enabled(imap, alice):
    fill(imap, alice, 5)
    c = _qresync(imap, alice)
    got = c.cmd("s", "SELECT INBOX")
    top = int(re.search(rb"HIGHESTMODSEQ (\d+)", got).group(1))
    other = imap.client(alice)
    other.select("INBOX")
    other.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    other.expunge()
    got = c.cmd("n", "NOOP")
    assert b"* VANISHED 2\r\n" in got and b"EXPUNGE" not in got
    c.cmd("d", "UID STORE 4:5 +FLAGS.SILENT (\\Deleted)")
    got = c.cmd("x", "EXPUNGE")
    assert got.startswith(b"* VANISHED 4:5\r\n") and b"EXPUNGE\r\n" not in got.split(b"x OK")[0]
    done = re.search(rb"x OK \[HIGHESTMODSEQ (\d+)\] EXPUNGE completed", got)
    assert done and int(done.group(1)) > top
    other.logout()
    c.close()


def test_vanished_earlier_never_names_a_uid_the_session_still_shows(imap, alice):
    fill(imap, alice, 3)
    validity, modseq = _state(imap, alice)
    c = _qresync(imap, alice)
    c.cmd("s", "SELECT INBOX")
    other = imap.client(alice)
    other.select("INBOX")
    other.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    other.expunge()
    # UID FETCH may not be answered with it before it is reported as a VANISHED
    got = c.cmd("f", f"UID FETCH 1:3 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert b"VANISHED (EARLIER)" not in got
    assert b"* VANISHED 3\r\n" in c.cmd("n", "NOOP")
    other.logout()
    c.close()


def test_a_trimmed_record_falls_back_to_every_uid_the_folder_lacks(imap, alice):
    fill(imap, alice, 8)
    validity, modseq = _state(imap, alice)
    c = imap.client(alice)
    c.select("INBOX")
    c.uid("STORE", "2,6", "+FLAGS", "(\\Deleted)")
    c.expunge()
    c.logout()
    assert imap.store.trim_vanished(time.time() + 1) > 0
    r = _qresync(imap, alice)
    got = r.cmd("s", f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
    assert b"* VANISHED (EARLIER) 2,6\r\n" in got
    # sequence-match data: message 4 is still UID 5 (the client's 5 at 5 is not):
    # nothing below UID 5 can have gone, only 6 is named
    got = r.cmd("m", f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:8 (3,5 3,5)))")
    assert b"* VANISHED (EARLIER) 2,6\r\n" in got
    got = r.cmd("m2", f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:8 (1,4 1,5)))")
    assert b"* VANISHED (EARLIER) 6\r\n" in got
    r.close()


def test_enable_pipelined_behind_login(imap, alice):
    """imaptest's QRESYNC mode writes LOGIN and ENABLE QRESYNC in one piece."""
    c = Raw(imap.port)
    c.sock.sendall(f"1 LOGIN {alice} {PASSWORD}\r\n2 ENABLE QRESYNC\r\n".encode())
    assert c.until(b"1 OK").endswith(b"1 OK")
    assert c.until(b"2 OK ENABLE completed\r\n").endswith(b"* ENABLED QRESYNC\r\n2 OK ENABLE completed\r\n")
    c.close()
