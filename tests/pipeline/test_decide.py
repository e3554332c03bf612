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
    assert d.headers == [("X-Spam-Score", "2.5")] and d.folders == {"amy@x.test": "Junk"}
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
