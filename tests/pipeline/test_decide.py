"""Message checks and the one decision: checks run at once, each within its
time-out; a broken or slow check objects to nothing and is named; the first
permanent refusal wins; headers and folders come through."""
from __future__ import annotations

import asyncio

from coremail.config import build_settings
from coremail.pipeline.checks import CheckResult, Message, Score
from coremail.pipeline.decide import decide
from coremail.pipeline.envelope import Client, Envelope
from coremail.pipeline.verdict import Verdict

RAW = b"Subject: =?utf-8?b?5L2g5aW9?=\r\nX-Long: a\r\n b\r\n\r\nbody\r\n"


def msg() -> Message:
    return Message(Client("192.0.2.1", sid="s1"), Envelope(), RAW, RAW[:RAW.index(b"\r\n\r\n") + 2],
                   build_settings({}))


class Check:
    def __init__(self, name, result=None, delay=0.0, boom=False):
        self.name, self.result, self.delay, self.boom = name, result, delay, boom
        self.started = None

    async def __call__(self, m):
        self.started = asyncio.get_running_loop().time()
        await asyncio.sleep(self.delay)
        if self.boom:
            raise RuntimeError("broken rule")
        return self.result


async def test_results_are_summed_and_broken_checks_named():
    a = Check("a", CheckResult(scores=[Score("A", 2.5, "looks like spam")],
                               headers=[("X-Spam-Score", "2.5")], folders={"amy@x.test": "Junk"}))
    b = Check("b", CheckResult(scores=[Score("B", -1.0, "known sender")]), delay=0.05)
    slow = Check("slow", CheckResult(Verdict(550, "5.7.1", "never seen")), delay=5)
    broken = Check("broken", boom=True)
    d = await decide([a, b, slow, broken], msg(), timeout=0.3)
    assert d.verdict.ok and d.score == 1.5
    assert d.headers == [("X-Spam-Status", "No, score=1.5 required=6.0 tests=A,B"),
                         ("X-Spam-Score", "2.5")] and d.folders == {"amy@x.test": "Junk"}
    assert [s.split(":")[0] for s in d.skipped] == ["slow", "broken"]
    assert abs(a.started - slow.started) < 0.05      # they ran at once


async def test_a_permanent_refusal_wins_over_a_temporary_one():
    temp = Check("t", CheckResult(Verdict(451, "4.7.1", "try later")))
    perm = Check("p", CheckResult(Verdict(554, "5.7.1", "no")))
    d = await decide([temp, perm], msg(), timeout=1)
    assert d.verdict.code == 554
    d = await decide([temp], msg(), timeout=1)
    assert d.verdict.code == 451


def test_the_message_is_parsed_once_for_every_check():
    m = msg()
    assert m.get("x-long") == "a b" and m.decoded("Subject") == "你好"
    assert m.fields is m.fields and m.decoded("missing") == ""


def _msg_to(*rcpts: str, **antispam) -> Message:
    from coremail.mail.address import parse_address
    from coremail.pipeline.envelope import Recipient
    env = Envelope(recipients=[Recipient(r, parse_address(r)) for r in rcpts])
    return Message(Client("192.0.2.1", sid="S1D"), env, RAW, RAW[:RAW.index(b"\r\n\r\n") + 2],
                   build_settings({"antispam": antispam} if antispam else {}))


class Kind(Check):
    def __init__(self, name, kind, result=None):
        super().__init__(name, result)
        self.kind = kind


def _scored(name, points):
    return Kind(name.lower(), "spam", CheckResult(scores=[Score(name, points, "words")]))


async def test_the_reject_score_refuses_with_score_limit_and_reference():
    d = await decide([_scored("KEYWORD_A", 10.0), _scored("DNSBL_B", 7.2)], _msg_to("a@x.test"),
                     timeout=1)
    assert (d.verdict.code, d.verdict.enhanced) == (550, "5.7.1")
    assert "spam score 17.2 (limit 15.0)" in d.verdict.text and "S1D" in d.verdict.text


async def test_the_junk_score_sends_copies_to_junk_and_says_yes():
    d = await decide([_scored("KEYWORD_A", 4.0), _scored("HEADER_B", 2.0)],
                     _msg_to("a@x.test", "b@x.test"), timeout=1)
    assert d.verdict.ok and d.folders == {"a@x.test": "Junk", "b@x.test": "Junk"}
    assert d.headers[0] == ("X-Spam-Status", "Yes, score=6.0 required=6.0 tests=KEYWORD_A,HEADER_B")
    d = await decide([_scored("KEYWORD_A", 5.9)], _msg_to("a@x.test"), timeout=1)
    assert d.folders == {} and d.headers[0][1].startswith("No, score=5.9 required=6.0")


async def test_an_allow_skips_the_spam_checks_but_never_the_virus_scan():
    allow = Kind("lists", "list", CheckResult(scores=[Score("ALLOW_SENDER", 0.0, "allowed")],
                                              allow=True))
    spam = _scored("KEYWORD_A", 50.0)
    virus = Kind("virus", "virus", CheckResult(Verdict(554, "5.7.1", "virus found: EICAR")))
    d = await decide([allow, spam, virus], _msg_to("a@x.test"), timeout=1)
    assert spam.started is None and virus.started is not None
    assert d.verdict.code == 554 and "virus found: EICAR" in d.verdict.text
    d = await decide([allow, spam], _msg_to("a@x.test"), timeout=1)
    assert d.verdict.ok and d.allowed and not d.spam
    assert [(r.name, r.skipped) for r in d.ran] == [("lists", ""),
                                                    ("keyword_a", "an allow rule matched")]


async def test_a_recipients_own_allow_keeps_its_copy_out_of_junk():
    lists = Kind("lists", "list", CheckResult(allowed={"b@x.test"}))
    d = await decide([lists, _scored("KEYWORD_A", 8.0)], _msg_to("a@x.test", "b@x.test"),
                     timeout=1)
    assert d.folders == {"a@x.test": "Junk"}


async def test_antispam_off_runs_only_policy_and_virus_checks():
    spam, lists = _scored("KEYWORD_A", 50.0), Kind("lists", "list", CheckResult())
    virus = Kind("virus", "virus", None)
    d = await decide([lists, spam, virus], _msg_to("a@x.test", enabled=False), timeout=1)
    assert d.verdict.ok and spam.started is None and lists.started is None
    assert virus.started is not None and d.headers == []
