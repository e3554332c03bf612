"""services/trace.py over the memory store: stories newest first, a bounce's
own story joined to the message it reports on, a user sees only their own."""
from __future__ import annotations

import time

from coremail.obs.trace import TraceEvent
from coremail.services.trace import MessageTrace, Query, render_all
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


def test_search_by_sender_recipient_subject_words_and_time():
    s = MemoryStore()
    t = time.time()
    s.trace_add([
        TraceEvent("received", "Q1", "r", at=t - 7200, sender="ann@example.test",
                   recipients=("bob@far.test",), details={"subject": "Invoice for May"}),
        TraceEvent("received", "Q2", "r", at=t - 60, sender="ann@example.test",
                   recipients=("carl@far.test",), details={"subject": "发票 五月"}),
        TraceEvent("received", "Q3", "r", at=t, sender="bob@far.test",
                   recipients=("ann@example.test",), details={"subject": "Re: invoice"}),
    ])
    tr = MessageTrace(s)

    def qids(**kw):
        return sorted(x.qid for x in tr.search(Query(**kw)))
    assert qids(sender="ANN@example.test") == ["Q1", "Q2"]
    assert qids(recipient="ann@example.test") == ["Q3"]
    assert qids(subject="invoice") == ["Q1", "Q3"]
    assert qids(subject="may INVOICE") == ["Q1"]
    assert qids(subject="发票") == ["Q2"]
    assert qids(sender="ann@example.test", since=t - 3600) == ["Q2"]
    assert qids(subject="invoice", until=t - 3600) == ["Q1"]
    assert qids(text="bob@far.test", subject="invoice") == ["Q1", "Q3"]
    assert qids() == [] and qids(subject="nothing") == []
    s.close()


def test_a_recipient_does_not_see_the_other_recipients_nor_where_their_copies_went():
    s = MemoryStore()
    t = time.time()
    both = ("ann@example.test", "bcc@example.test")
    s.trace_add([
        TraceEvent("received", "Q1", "received ... to <ann> <bcc>", at=t, sender="carl@far.test",
                   recipients=both, details={"ip": "192.0.2.1", "subject": "hi"}),
        TraceEvent("delivered", "Q1", "delivered to ann INBOX", at=t + 1, recipients=both,
                   details={"mailbox": "ann@example.test", "folder": "INBOX"}),
        TraceEvent("delivered", "Q1", "delivered to bcc Junk", at=t + 1, recipients=both,
                   details={"mailbox": "bcc@example.test", "folder": "Junk"}),
        TraceEvent("forwarded", "Q1", "bcc forwarded to secret@far.test", at=t + 1,
                   recipients=both, details={"address": "bcc@example.test",
                                             "to": ["secret@far.test"]}),
    ])
    [ann] = MessageTrace(s).for_user("ann@example.test", "hi")
    told = " ".join(e.text + str(e.details) + " ".join(e.recipients) for e in ann.events)
    assert "bcc" not in told and "192.0.2.1" not in told
    assert [e.kind for e in ann.events] == ["received", "delivered"]
    [carl] = MessageTrace(s).for_user("carl@far.test")
    told = " ".join(e.text + str(e.details) for e in carl.events)
    assert "Junk" not in told and "secret" not in told and "bcc@example.test" in told
    s.close()
