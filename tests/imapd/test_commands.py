"""The command table and the tagged refusals, without a socket."""
from __future__ import annotations

from coremail.imapd import folders, selected
from coremail.imapd.commands import CommandTable
from coremail.imapd.responses import AUTH, NOTAUTH, SELECTED, Bad, No, refusal
from coremail.imapd.session import ImapSession
from coremail.store.interfaces import QuotaExceeded, StorageFull, StoreError


def test_lookup_by_state():
    t = CommandTable()
    assert t.lookup("LOGIN", NOTAUTH) is ImapSession.cmd_login
    assert t.lookup("LOGIN", AUTH) is None
    assert t.lookup("SELECT", NOTAUTH) is None
    assert t.lookup("SELECT", SELECTED) is folders.select
    assert t.lookup("FETCH", AUTH) is None and t.lookup("FETCH", SELECTED) is selected.fetch
    assert t.lookup("NOSUCH", SELECTED) is None


def test_refusals():
    assert refusal("a1", No("No mailbox x", "TRYCREATE")) == b"a1 NO [TRYCREATE] No mailbox x\r\n"
    assert refusal("a2", Bad("Expected DONE")) == b"a2 BAD Expected DONE\r\n"
    assert refusal("a3", QuotaExceeded("over")) == b"a3 NO [OVERQUOTA] over\r\n"
    assert refusal("a4", StorageFull("full")) == b"a4 NO [UNAVAILABLE] full\r\n"
    assert refusal("a5", StoreError("oops")) == b"a5 NO [SERVERBUG] oops\r\n"
