"""What the SMTP service tells the trace, without a socket: the checks'
scores (the hook the message checks fill) and a refusal after DATA."""
from __future__ import annotations

from coremail.ingest import Job
from coremail.mail.address import parse_address
from coremail.obs.log import Log
from coremail.obs.trace import Tracer
from coremail.pipeline.checks import Score
from coremail.pipeline.decide import Decision
from coremail.pipeline.envelope import Client, Envelope, Recipient
from coremail.pipeline.verdict import Verdict
from coremail.smtpd.engine import Session
from coremail.smtpd.handler import SessionState
from coremail.smtpd.tracing import SmtpTrace

CONTENT = (b"Message-ID: <m1@remote.test>\r\nSubject: =?UTF-8?B?5Y+R56Wo?= for\r\n"
           b" May\r\n\r\nhello\r\n")


def _setup():
    got = []
    tracer = Tracer(got.extend, service="smtp")
    session = Session(sid="a.1", ip="192.0.2.9", port=0, listener="smtp")
    st = SessionState(Client("192.0.2.9", helo="mx.remote.test"), Log("smtp"))
    env = Envelope(sender=parse_address("x@remote.test"))
    env.recipients.append(Recipient("ann@example.test", parse_address("ann@example.test")))
    return got, tracer, session, st, env


def test_checks_scores_are_one_event_in_words():
    got, tracer, session, st, env = _setup()
    d = Decision(Verdict(250, "2.0.0", "ok"), scores=[
        Score("SPF_FAIL", 2.5, "the sender's domain does not allow this address"),
        Score("BAYES_00", -1.0, "looks like this user's good mail")],
        skipped=["virus: no answer within 20 s"])
    job = Job(qid="Q1", sender="x@remote.test")
    SmtpTrace(tracer).message(session, st, env, Verdict(250, "2.0.0", "Ok"), "Q1", d, job,
                              CONTENT, len(CONTENT))
    tracer.flush()
    kinds = {e.kind: e for e in got}
    assert set(kinds) == {"received", "checks"}
    c = kinds["checks"]
    assert kinds["received"].details["subject"] == "发票 for May"   # decoded, unfolded
    assert c.details["verdict"] == "accept"
    assert c.text == ("checks: score 1.5, delivered as usual: SPF_FAIL +2.5 (the sender's domain does not allow "
                      "this address); BAYES_00 -1 (looks like this user's good mail); "
                      "not checked: virus: no answer within 20 s")
    assert c.details["scores"][0] == {"name": "SPF_FAIL", "points": 2.5,
                                      "words": "the sender's domain does not allow this address"}
    assert c.message_id == "m1@remote.test" and c.qid == "Q1"
    tracer.close()


def test_a_refusal_after_data_has_a_reference_and_the_reply():
    got, tracer, session, st, env = _setup()
    v = Verdict(550, "5.7.1", "spam score 17.2 (limit 15.0)")
    SmtpTrace(tracer).message(session, st, env, v, "", Decision(v), None, CONTENT, 100)
    tracer.flush()
    [e] = got
    assert e.kind == "refused" and e.qid.startswith("s:a.1.")
    assert "refused at the end of DATA from mx.remote.test [192.0.2.9] on port 25 (MX)" in e.text
    assert e.text.endswith("we replied 550 5.7.1 spam score 17.2 (limit 15.0)")
    tracer.close()
