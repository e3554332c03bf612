"""services.filters, which the CLI and the web share: rules checked before
they are stored, a user's own lists, and `test` through the real Pipeline
with nothing counted."""
from __future__ import annotations

import pytest

from coremail.config import build_settings
from coremail.services.filters import FilterAdmin, RuleError
from coremail.store.memory import MemoryStore

S = build_settings({"server": {"domain": "x.test"}})


@pytest.fixture
def admin():
    store = MemoryStore()
    store.add_domain("x.test")
    store.add_user("amy@x.test", password_hash="x", quota=0)
    yield FilterAdmin(store, S)
    store.close()


def test_rules_added_listed_per_user_and_deleted(admin):
    a = admin.add("ip", "2001:db8::/32", "junk")
    b = admin.add("sender", "@Spam.Test", "score:4", user="Amy@x.test", note="ads")
    assert (b.pattern, b.action, b.points, b.user) == ("@spam.test", "score", 4.0, "amy@x.test")
    assert [r.id for r in admin.list("amy@x.test")] == [b.id]
    assert admin.lines()[1] == f"{b.id}\tsender\t@spam.test\tscore:4\tamy@x.test\thits=0  # ads"
    assert not admin.delete(a.id, user="amy@x.test") and admin.delete(b.id, user="amy@x.test")
    with pytest.raises(RuleError, match="no user nobody@x.test"):
        admin.add("sender", "a@b.test", user="nobody@x.test")
    with pytest.raises(RuleError, match="unknown action"):
        admin.add("keyword", "x", "drop")


def test_a_users_own_list_takes_bare_domains_and_one_entry_per_sender(admin):
    admin.add("sender", "@spam.test", "reject")                # the server's: not hers
    a = admin.add_own("Amy@x.test", "Promo.TEST", "junk")
    assert (a.kind, a.pattern, a.action, a.user) == ("sender", "@promo.test", "junk", "amy@x.test")
    b = admin.add_own("amy@x.test", "@promo.test", "allow")   # replaces the block
    assert [(r.id, r.action) for r in admin.own_senders("amy@x.test")] == [(b.id, "allow")]
    with pytest.raises(RuleError, match="is not an address or @domain"):
        admin.add_own("amy@x.test", "not an address!", "junk")
    with pytest.raises(RuleError, match="unknown action"):
        admin.add_own("amy@x.test", "x@y.test", "score:5")


def test_filter_test_reports_every_check_and_counts_nothing(admin):
    rule = admin.add("keyword", "rolex", "score:9")
    raw = (b"From: a@remote.test\nTo: amy@x.test\nSubject: ROLEX for you\n"
           b"Date: Mon, 1 Dec 2025 10:00:00 +0000\nMessage-ID: <1@remote.test>\n\ncheap\n")
    report = admin.test(raw)
    lines = report.lines(S)
    assert "RCPT TO:<amy@x.test>: 250 2.1.5 recipient <amy@x.test> ok" in lines
    assert f"  KEYWORD_SCORE_{rule.id} +9  the server's rule {rule.id}: keyword 'rolex'" in lines
    assert "check fingerprint: nothing found" in lines and \
        "result: accepted (amy@x.test -> Junk)" in lines
    assert admin.list()[0].hits == 0
