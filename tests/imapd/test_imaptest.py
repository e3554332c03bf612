"""Dovecot's imaptest compliance scripts against our imap service and, in the
same run, against a private Dovecot 2.3: a script we fail that Dovecot passes
fails here. Scripts for extensions we do not advertise are skipped by imaptest
itself, and so are those Dovecot fails too.

KNOWN_FAILURES is the one list of scripts we are known to fail (each with what
we did wrong); they are xfail, so a new failure fails CI and a known one that
starts passing shows up as XPASS: then delete it from the list.
`make imaptest` builds the tool; `bench/imaptest_compliance` prints the table.
"""
from __future__ import annotations

import os

import pytest

from coremail.imapd.mailbox import Mailbox
from tests.support import imaptest
from tests.support.dovecot import HAVE_DOVECOT, PrivateDovecot
from tests.support.inproc import service_fixture

from .conftest import ImapServer

USER, USER2, PASSWORD = "imaptest1@example.test", "imaptest2@example.test", "imaptest-pw-1"

# script -> what we answer wrong (observed; the command, our reply, what imaptest expected)
KNOWN_FAILURES: dict[str, str] = {}

REQUIRED = os.environ.get("COREMAIL_REQUIRE_PEERS") == "1"
MISSING = ("imaptest is not built (`make imaptest`)" if not imaptest.available()
           else "needs root and Dovecot (dovecot-imapd)" if not HAVE_DOVECOT else "")


def _params():
    if MISSING:
        return [pytest.param("-", id="imaptest-missing")]
    return [pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[s], raises=AssertionError))
            if s in KNOWN_FAILURES else s for s in imaptest.scripts()]


imap = service_fixture(ImapServer, scope="module", stop_timeout=2)


@pytest.fixture(scope="module")
def ours(imap):
    for u in (USER, USER2):
        imap.add_user(u, PASSWORD)
    return imap


@pytest.fixture(scope="module")
def dovecot():
    d = PrivateDovecot({USER: PASSWORD, USER2: PASSWORD}).start()
    yield d
    d.stop()


def test_known_failures_name_real_scripts():
    if MISSING:
        pytest.skip(MISSING)
    assert not set(KNOWN_FAILURES) - set(imaptest.scripts())


@pytest.mark.parametrize("script", _params())
def test_imaptest_script(script, request):
    if MISSING:
        if REQUIRED:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    peer = request.getfixturevalue("dovecot")
    srv = request.getfixturevalue("ours")
    ref = imaptest.run_script(script, peer.port, USER, PASSWORD, USER2)
    got = imaptest.run_script(script, srv.port, USER, PASSWORD, USER2)
    if got.status == "skip":
        pytest.skip("imaptest skips it here: a capability we do not advertise")
    if got.status == "pass":
        return
    if ref.status != "pass":
        pytest.skip(f"Dovecot does not pass it either ({ref.status}: {ref.first_failure(200)})")
    assert got.status == "pass", f"we {got.status}, Dovecot passes: {got.first_failure(1500)}"


def test_imaptest_qresync_stress_finds_no_error(request, tmp_path, monkeypatch):
    """imaptest's QRESYNC mode (ENABLE QRESYNC pipelined behind LOGIN, the
    expunges of other sessions as VANISHED, a UID in every FETCH, all checked
    against what its sessions saw) for a few seconds of its stress mix: not
    one error, and VANISHED was sent. (Its mix never closes a mailbox, so it
    never selects with QRESYNC parameters: test_qresync.py covers those.)"""
    if not imaptest.available():
        if REQUIRED:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    srv = request.getfixturevalue("ours")
    vanished = []
    remove = Mailbox.remove

    def counting(self, uids, qresync=False):
        out = remove(self, uids, qresync)
        vanished.extend(line for line in out if line.startswith(b"* VANISHED "))
        return out

    monkeypatch.setattr(Mailbox, "remove", counting)
    res = imaptest.run_stress(srv.port, USER, PASSWORD, imaptest.write_mbox(tmp_path / "a.mbox", count=20),
                              tmp_path / "out.tsv", clients=4, secs=8, extra=("qresync",))
    assert res.commands > 20, res.stdout[-2000:]
    assert not res.errors, "\n".join(res.errors[:20])
    assert vanished, "no VANISHED was sent"
