"""Filter rules and the fingerprint counter on every backend: rules added,
listed in order, deleted; batched hits counted; fingerprint counts summed
over the window's slots, old slots forgotten."""
from __future__ import annotations


def test_rules_are_kept_listed_and_deleted(store):
    a = store.add_filter_rule("ip", "192.0.2.0/24", "reject", note="a bad net")
    b = store.add_filter_rule("keyword", "发票", "score", points=4.5, user="amy@example.test")
    assert [r.id for r in store.list_filter_rules()] == [a.id, b.id]
    got = store.list_filter_rules()[1]
    assert (got.kind, got.pattern, got.action, got.points, got.user, got.hits) == (
        "keyword", "发票", "score", 4.5, "amy@example.test", 0)
    store.add_filter_hits({a.id: 3, b.id: 1, 9999: 5}, now=1000.0)
    store.add_filter_hits({a.id: 2})
    hits = {r.id: r.hits for r in store.list_filter_rules()}
    assert hits == {a.id: 5, b.id: 1}
    assert store.delete_filter_rule(a.id) and not store.delete_filter_rule(a.id)
    assert [r.id for r in store.list_filter_rules()] == [b.id]
    c = store.add_filter_rule("sender", "@spam.test", "junk")
    assert c.id > b.id


def test_fingerprint_counts_sum_the_window_and_forget_old_slots(store):
    store.fingerprint_add({("k1", 10): 2, ("k2", 10): 1}, forget_before=0)
    store.fingerprint_add({("k1", 10): 3, ("k1", 12): 1}, forget_before=0)
    assert store.fingerprint_counts(["k1", "k2", "k3"], since=10) == {"k1": 6, "k2": 1}
    assert store.fingerprint_counts(["k1"], since=11) == {"k1": 1}
    store.fingerprint_add({("k2", 13): 1}, forget_before=12)
    assert store.fingerprint_counts(["k1", "k2"], since=0) == {"k1": 1, "k2": 1}
    assert store.fingerprint_counts([], since=0) == {}
