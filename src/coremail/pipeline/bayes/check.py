"""The intelligent score as a message check: the message's clues judged by
the global model pooled with the recipient's own, reported as one score band
(BAYES_00 .. BAYES_999, in X-Spam-Status tests=) with the clues that weighed
most in its words. Off with `antispam.bayes = false`; silent (no score) while
the models have too little training.

A message for several local users is scored by the global model; a user
whose own model is sure it is spam (a band worth junk_score on its own) gets
their copy in Junk all the same."""
from __future__ import annotations

from concurrent.futures import Executor

from ...store.interfaces import Store
from ..checks import CheckResult, LaterFlush, Message, Score
from ..decide import JUNK
from .model import Model
from .seen import SeenTokens
from .tokens import tokenize_text

SEEN_FLUSH = 30.0   # seconds from a message's new clues to their "seen today" write


class BayesCheck:
    name = "bayes"
    kind = "spam"

    def __init__(self, store: Store, executor: Executor | None = None):
        self.model = Model(store)
        self.seen = SeenTokens(store)
        self._flush = LaterFlush(self.seen.flush, SEEN_FLUSH, executor)

    def close(self) -> None:
        self.seen.flush()

    async def __call__(self, msg: Message) -> CheckResult | None:
        settings = msg.settings.antispam
        if not settings.bayes:
            return None
        keys: dict[int, list[str]] = {}
        for r in msg.env.recipients:
            for u in r.users:
                keys.setdefault(u.id, []).append(r.address.key)
        users = sorted(keys)
        judged = await msg.run(self.model.untrained, [None, *users])
        if judged is None:
            tokens = await msg.run(tokenize_text, await msg.text())
            met: list[bool] = []
            # one recipient: their pooled model alone; several: the global one too
            judged = await msg.run(self.model.judge, tokens,
                                   users if len(users) == 1 else [None, *users],
                                   None if msg.dry_run else lambda k: met.append(self.seen.note(k)))
            if any(met):
                self._flush.schedule()
        main = judged[users[0]] if len(users) == 1 else judged[None]
        result = CheckResult()
        if main.band is not None:
            name, points = main.band
            result.scores.append(Score(name, points, main.words()))
        else:
            result.note = main.reason
        if len(users) > 1:
            for uid in users:
                b = judged[uid].band
                if b is not None and b[1] >= settings.junk_score:
                    result.folders.update((k, JUNK) for k in keys[uid])
        return result
