"""services/trace.py over the memory store: stories newest first, a bounce's
own story joined to the message it reports on, a user sees only their own."""
from __future__ import annotations

import time

from coremail.obs.trace import TraceEvent
from coremail.services.trace import MessageTrace, render_all
from coremail.store.memory import MemoryStore


def _store() -> MemoryStore:
    s = MemoryStore()
    t = time.time()
    s.trace_add([
        TraceEvent("received", "Q1", "received from a", at=t, message_id="m1@x.test",
                   sender="ann@example.test", recipients=("bob@far.test",)),
        TraceEvent("bounced", "Q1", "bounced", at=t + 1, recipients=("bob@far.test",),
                   details={"bounce_qid": "Q1B0"}),
        TraceEvent("delivered", "Q1B0", "delivered the report", at=t + 2,
                   recipients=("ann@example.test",)),
        TraceEvent("received", "Q2", "received from c", at=t + 3, sender="carl@far.test",
                   recipients=("dora@example.test",)),
        TraceEvent("refused", "s:1.1", "refused at RCPT", at=t + 4, sender="eve@far.test",
                   recipients=("ann@example.test",)),
    ])
    return s


def test_stories_newest_first_with_the_bounce_joined():
    s = _store()
    stories = MessageTrace(s).find("m1@x.test")
    assert [x.qid for x in stories] == ["Q1B0", "Q1"]
    text = render_all(stories, "m1@x.test")
    assert text.index("Message Q1B0") < text.index("Message Q1,") and "Message-ID <m1@x.test>" in text
    refused = render_all(MessageTrace(s).find("eve@far.test"), "eve@far.test")
    assert refused.startswith("Refused before it was accepted (no queue id)")
    assert "nothing recorded for 'x'" in render_all(MessageTrace(s).find("x"), "x")
    s.close()


def test_a_user_sees_only_mail_they_sent_or_received():
    s = _store()
    mine = MessageTrace(s).for_user("ann@example.test")
    assert {x.qid for x in mine} == {"Q1", "Q1B0", "s:1.1"}
    assert MessageTrace(s).for_user("dora@example.test", "Q1") == []
    assert [x.qid for x in MessageTrace(s).for_user("dora@example.test", "Q2")] == ["Q2"]
    s.close()
