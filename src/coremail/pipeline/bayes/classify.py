"""The arithmetic of the intelligent score: Robinson's per-clue probability
and Fisher's chi-square combining, as in SpamBayes and SpamAssassin's Bayes.

Why this and not an online logistic regression (Stalwart's FTRL): the model
is nothing but two counts per clue, so (1) a training is undone exactly by
subtracting (a message moved out of Junk), (2) the administrator's global
model and a user's own add up clue by clue with no second model to blend,
(3) every clue's weight can be shown to the administrator as "seen in 40
spam and 2 ham", and (4) an update is an increment, safe to batch and to run
on several nodes at once. Chi-square combining gives a score near 0 or 1
when the clues agree and near 0.5 when they conflict, which is an honest
"unsure" rather than a confident mistake.

A clue's probability: with s spam and h ham seen among S spam and H ham
trained, p = (s/S) / (s/S + h/H), pulled towards 0.5 when seen rarely:
f = (STRENGTH * 0.5 + n * p) / (STRENGTH + n), n = s + h. Only the
MAX_CLUES clues furthest from 0.5 (at least MIN_STRENGTH away) vote."""
from __future__ import annotations

import math
from dataclasses import dataclass

STRENGTH = 0.45        # how many sightings an unseen clue's 0.5 is worth
MIN_STRENGTH = 0.1     # |f - 0.5| below this: the clue is no evidence
MAX_CLUES = 150


@dataclass(frozen=True, slots=True)
class Clue:
    token: str
    prob: float       # towards spam (1) or ham (0)
    spam: float       # weighted sightings in spam and ham
    ham: float


def clue_prob(s: float, h: float, total_spam: float, total_ham: float) -> float:
    sr = s / total_spam if total_spam else 0.0
    hr = h / total_ham if total_ham else 0.0
    p = sr / (sr + hr) if sr + hr else 0.5
    n = s + h
    return (STRENGTH * 0.5 + n * p) / (STRENGTH + n)


def chi2q(x2: float, dof: int) -> float:
    """P(chi-square with an even `dof` >= x2): the series of e^-m m^i / i!."""
    m = x2 / 2.0
    term = total = math.exp(-m)
    for i in range(1, dof // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


def combine(probs: list[float]) -> float:
    """Fisher's combining of the clue probabilities, both ways: 0 ham, 1 spam."""
    if not probs:
        return 0.5
    n = len(probs)
    # Sums of logs, not logs of products: a product of 150 small numbers underflows.
    # Spammy clues (p near 1) make the sum of ln(1 - p) very negative, and
    # so the chance that such a sum is random small: spamminess near 1.
    ln_p = sum(math.log(max(p, 1e-200)) for p in probs)
    ln_q = sum(math.log(max(1.0 - p, 1e-200)) for p in probs)
    hamminess = 1.0 - chi2q(-2.0 * ln_p, 2 * n)
    spamminess = 1.0 - chi2q(-2.0 * ln_q, 2 * n)
    return (1.0 + spamminess - hamminess) / 2.0
