"""The intelligent score's counts on every backend: increments, never the
same message twice in one class, a move between classes undoing the first
training exactly, models kept apart, a user's model gone with the user."""
from __future__ import annotations

from coremail.store.interfaces import GLOBAL_MODEL, BayesItem

from .conftest import DOMAIN


def _item(digest: str, spam: bool, tokens) -> BayesItem:
    return BayesItem(digest.rjust(32, "0"), spam, list(tokens))


def counts(store, owners, tokens):
    totals, got = store.bayes_lookup(owners, tokens)
    assert totals == store.bayes_totals(owners)
    return got


def test_train_counts_and_dedup(store):
    out = store.bayes_train(GLOBAL_MODEL, [_item("a", True, [1, 2, 3]), _item("b", True, [2, 3]),
                                           _item("c", False, [3, -4]), _item("a", True, [1, 2, 3])])
    assert out == ["learnt", "learnt", "learnt", "known"]
    assert store.bayes_totals([GLOBAL_MODEL]) == {GLOBAL_MODEL: (2, 1)}
    got = counts(store, [GLOBAL_MODEL], [1, 2, 3, -4, 99])
    assert got == {(0, 1): (1, 0), (0, 2): (2, 0), (0, 3): (2, 1), (0, -4): (0, 1)}
    assert store.bayes_train(GLOBAL_MODEL, [_item("b", True, [2, 3])]) == ["known"]
    assert store.bayes_size(GLOBAL_MODEL) == 4


def test_relearn_undoes_the_other_class(store):
    store.bayes_train(GLOBAL_MODEL, [_item("a", True, [1, 2]), _item("b", False, [2])])
    assert store.bayes_train(GLOBAL_MODEL, [_item("a", False, [1, 2])]) == ["relearnt"]
    assert store.bayes_totals([GLOBAL_MODEL]) == {GLOBAL_MODEL: (0, 2)}
    assert counts(store, [GLOBAL_MODEL], [1, 2]) == {(0, 1): (0, 1), (0, 2): (0, 2)}
    # and back: the token rows at zero disappear
    store.bayes_train(GLOBAL_MODEL, [_item("a", True, [1, 2]), _item("b", True, [2])])
    assert counts(store, [GLOBAL_MODEL], [1, 2]) == {(0, 1): (1, 0), (0, 2): (2, 0)}
    assert store.bayes_totals([GLOBAL_MODEL]) == {GLOBAL_MODEL: (2, 0)}


def test_undo_never_goes_below_zero(store):
    store.bayes_train(GLOBAL_MODEL, [_item("a", True, [1])])
    # learnt by an older tokenizer: the undo names a token never counted
    store.bayes_train(GLOBAL_MODEL, [_item("a", False, [1, 7])])
    assert counts(store, [GLOBAL_MODEL], [1, 7]) == {(0, 1): (0, 1), (0, 7): (0, 1)}


def test_models_apart_and_dropped_with_the_user(store):
    u = store.add_user(f"bob@{DOMAIN}", password_hash="x", quota=0)
    store.bayes_train(GLOBAL_MODEL, [_item("a", True, [1])])
    store.bayes_train(u.id, [_item("a", False, [1]), _item("z", False, [5])])
    assert store.bayes_totals([GLOBAL_MODEL, u.id]) == {GLOBAL_MODEL: (1, 0), u.id: (0, 2)}
    assert counts(store, [GLOBAL_MODEL, u.id], [1]) == {(0, 1): (1, 0), (u.id, 1): (0, 1)}
    store.delete_user(f"bob@{DOMAIN}")
    assert store.bayes_totals([u.id]) == {}
    assert counts(store, [u.id], [1, 5]) == {}
    assert store.bayes_train(u.id, [_item("a", False, [1])]) == ["learnt"]  # forgotten too


def test_many_tokens_one_batch(store):
    items = [_item(f"{i:x}", i % 2 == 0, range(i * 1000, i * 1000 + 1500)) for i in range(20)]
    assert store.bayes_train(GLOBAL_MODEL, items) == ["learnt"] * 20
    assert store.bayes_size(GLOBAL_MODEL) == 20 * 1000 + 500
    got = counts(store, [GLOBAL_MODEL], list(range(1000, 1500)))
    assert got[(0, 1200)] == (1, 1)


DAY = 86400.0
T0 = 20_000 * DAY     # a day far from today, so nothing depends on the clock


def test_expiry_drops_old_rare_tokens_and_touch_keeps_them(store):
    store.bayes_train(GLOBAL_MODEL, [_item("a", True, [1, 2, 3]), _item("b", True, [3])], now=T0)
    store.bayes_train(GLOBAL_MODEL, [_item("c", False, [4])], now=T0 + 50 * DAY)
    store.bayes_touch([(GLOBAL_MODEL, 2), (GLOBAL_MODEL, 99)], now=T0 + 40 * DAY)
    # not seen since T0 + 30 days and counted once at most: 1 goes; 2 was
    # scored since, 3 is counted twice, 4 was trained since
    assert store.bayes_expire(T0 + 30 * DAY, rare=1, largest=0) == 1
    assert counts(store, [GLOBAL_MODEL], [1, 2, 3, 4]) == {
        (0, 2): (1, 0), (0, 3): (2, 0), (0, 4): (0, 1)}
    assert store.bayes_expire(T0 + 30 * DAY, rare=1, largest=0) == 0
    # the totals are untouched: expiry forgets clues, not training
    assert store.bayes_totals([GLOBAL_MODEL]) == {GLOBAL_MODEL: (2, 1)}


def test_expiry_bounds_each_model(store):
    u = store.add_user(f"bob@{DOMAIN}", password_hash="x", quota=0)
    store.bayes_train(GLOBAL_MODEL, [_item("a", True, [1, 2]), _item("b", True, [2])], now=T0)
    store.bayes_train(GLOBAL_MODEL, [_item("c", True, [3, 4])], now=T0 + DAY)
    store.bayes_train(u.id, [_item("a", False, [1, 2, 3])], now=T0)
    # the global model over 3 tokens: the least recently seen with the fewest
    # counts goes first (1: day 0, once; 2 is day 0 but twice); bob's fits
    assert store.bayes_expire(T0 - DAY, rare=5, largest=3) == 1
    assert store.bayes_size(GLOBAL_MODEL) == 3
    assert counts(store, [GLOBAL_MODEL], [1, 2, 3, 4]) == {
        (0, 2): (2, 0), (0, 3): (1, 0), (0, 4): (1, 0)}
    assert store.bayes_size(u.id) == 3
    assert store.bayes_expire(T0 - DAY, rare=5, largest=1) == 4
    assert store.bayes_size(GLOBAL_MODEL) == 1 and store.bayes_size(u.id) == 1
    # the newest (day 1) stays, whichever of its two ties
    assert len(counts(store, [GLOBAL_MODEL], [3, 4])) == 1
