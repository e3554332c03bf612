"""The global model and the per-user models in the store, judged together:
what the intelligent score reads and trains.

A user's counts are pooled with the global ones clue by clue, the user's
weighing USER_WEIGHT times as much (their own corrections are few but about
their own mail). A message is judged only when the pooled models have seen
at least MIN_SPAM spam and MIN_HAM ham messages; before that the answer is
"no score" with the reason, never a guess from a handful of examples.

`digest` names a message for "never learnt twice": its Message-ID, Date,
Subject and body, so the copy delivered here (with our trace and X-Spam-*
fields on top) is the same message as the file it came from."""
from __future__ import annotations

import hashlib
import heapq
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ...mail.headers import header_end
from ...store.interfaces import GLOBAL_MODEL, BayesItem, Store
from .hot import HotTokens
from .classify import MAX_CLUES, MIN_STRENGTH, Clue, clue_prob, combine
from .tokens import from_line_stripped, token_hash, tokenize

MIN_SPAM = 30
MIN_HAM = 30
USER_WEIGHT = 3.0
SHOWN_CLUES = 5

# (lowest probability, name, points): SpamAssassin's band names; points
# chosen so that only a near-certain judgement (BAYES_999) files a message
# in Junk on its own, and a clearly hammy one pulls other checks back.
BANDS: tuple[tuple[float, str, float], ...] = (
    (0.999, "BAYES_999", 6.0), (0.99, "BAYES_99", 4.5), (0.95, "BAYES_95", 3.5),
    (0.80, "BAYES_80", 2.5), (0.60, "BAYES_60", 1.5), (0.40, "BAYES_50", 0.8),
    (0.20, "BAYES_40", 0.0), (0.05, "BAYES_20", -0.5), (0.01, "BAYES_05", -1.0),
    (0.0, "BAYES_00", -2.0))
_FIELD = re.compile(rb"(?im)^(message-id|date|subject)[ \t]*:(.*(?:\r?\n[ \t].*)*)")


def band(prob: float) -> tuple[str, float]:
    for low, name, points in BANDS:
        if prob >= low:
            return name, points
    return BANDS[-1][1], BANDS[-1][2]


@dataclass
class Judgement:
    prob: float | None                  # None: not enough training
    models: list[str]                   # which models judged, with their sizes, in words
    reason: str = ""                    # why there is no score
    spam_clues: list[Clue] = field(default_factory=list)   # strongest first
    ham_clues: list[Clue] = field(default_factory=list)

    @property
    def band(self) -> tuple[str, float] | None:
        return None if self.prob is None else band(self.prob)

    def words(self) -> str:
        if self.prob is None:
            return self.reason
        def clues(cs: list[Clue]) -> str:
            return ", ".join(f"{c.token} {c.prob:.2f} ({c.spam:g}/{c.ham:g})"
                             for c in cs[:SHOWN_CLUES]) or "-"
        return (f"spam probability {self.prob:.4f} by {' + '.join(self.models)}; "
                f"towards spam: {clues(self.spam_clues)}; towards ham: {clues(self.ham_clues)} "
                "(clue probability (spam/ham messages seen with it))")


def digest(raw: bytes) -> str:
    raw = from_line_stripped(raw)
    end = header_end(raw)
    head, body = (raw[:end], raw[end:]) if end is not None else (raw, b"")
    h = hashlib.blake2b(digest_size=16)
    for name, value in sorted((m.group(1).lower(), b" ".join(m.group(2).split()))
                              for m in _FIELD.finditer(head)):
        h.update(name + b":" + value + b"\n")
    h.update(body.replace(b"\r\n", b"\n").rstrip())
    return h.hexdigest()


def item(raw: bytes, spam: bool) -> BayesItem:
    return BayesItem(digest(raw), spam, [token_hash(t) for t in tokenize(raw)])


def _name(owner: int) -> str:
    return "global" if owner == GLOBAL_MODEL else f"user {owner}"


class Model:
    def __init__(self, store: Store):
        self.store = store
        self.hot = HotTokens(store)

    def judge(self, tokens: Sequence[str], user_ids: Sequence[int | None] = (None,),
              seen: Callable[[Iterable[tuple[int, int]]], object] | None = None
              ) -> dict[int | None, Judgement]:
        """Blocking: the judgement for each user (None: the global model
        alone), from one read of the counts of every model involved; `seen`
        is told which (owner, token) rows the message met."""
        owners = [GLOBAL_MODEL] + sorted({u for u in user_ids if u is not None})
        hashes = {token_hash(t): t for t in tokens}
        totals, counts = self.hot.lookup(owners, list(hashes))
        if seen is not None and counts:
            seen(counts.keys())
        return {u: self._judge(hashes, totals, counts, u) for u in user_ids}

    def untrained(self, user_ids: Sequence[int | None] = (None,)
                  ) -> dict[int | None, Judgement] | None:
        """Blocking, one small read: the "no score" judgements when no model
        involved has enough training yet (then the message's clues need not
        be made or looked up), else None."""
        owners = [GLOBAL_MODEL] + sorted({u for u in user_ids if u is not None})
        totals = self.store.bayes_lookup(owners, [])[0]    # the driver's fast path
        out = {u: self._judge({}, totals, {}, u) for u in user_ids}
        return out if all(j.prob is None and j.reason for j in out.values()) else None

    @staticmethod
    def _judge(hashes: dict[int, str], totals: dict[int, tuple[int, int]],
               counts: dict[tuple[int, int], tuple[int, int]], user: int | None) -> Judgement:
        gs, gh = totals.get(GLOBAL_MODEL, (0, 0))
        us, uh = totals.get(user, (0, 0)) if user is not None else (0, 0)
        models = [f"global: {gs} spam, {gh} ham"] if gs or gh else []
        if us or uh:
            models.append(f"{_name(user or 0)}: {us} spam, {uh} ham")
        if gs + us < MIN_SPAM or gh + uh < MIN_HAM:
            return Judgement(None, models, reason=(
                f"not enough training for a score: {gs + us} spam and {gh + uh} ham messages "
                f"learnt, {MIN_SPAM} of each needed"))
        w = USER_WEIGHT
        total_s, total_h = gs + w * us, gh + w * uh
        found = []
        for hsh, tok in hashes.items():
            sh = counts.get((GLOBAL_MODEL, hsh))
            s, h = sh if sh is not None else (0, 0)
            if user is not None:
                sh2 = counts.get((user, hsh))
                if sh2 is not None:
                    s, h = s + w * sh2[0], h + w * sh2[1]
            if s or h:
                p = clue_prob(s, h, total_s, total_h)
                if abs(p - 0.5) >= MIN_STRENGTH:
                    found.append((abs(p - 0.5), p, tok, s, h))
        voting = [Clue(tok, p, s, h) for _, p, tok, s, h in heapq.nlargest(MAX_CLUES, found)]
        prob = combine([c.prob for c in voting])
        spammy = sorted((c for c in voting if c.prob > 0.5), key=lambda c: -c.prob)
        hammy = sorted((c for c in voting if c.prob < 0.5), key=lambda c: c.prob)
        return Judgement(prob, models, spam_clues=spammy[:SHOWN_CLUES],
                         ham_clues=hammy[:SHOWN_CLUES])
