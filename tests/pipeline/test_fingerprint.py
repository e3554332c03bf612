"""The fingerprint: copies that differ in greeting, name, number and link
share a band key, unrelated texts do not, short texts are not counted; two
workers' counters see each other's copies through the store."""
from __future__ import annotations

import random

from coremail.pipeline.fingerprint import Counter, band_keys
from coremail.store.memory import MemoryStore

TEMPLATE = ("{greeting} {name},\nwe are pleased to offer you an exclusive opportunity to raise "
            "your income from home. Thousands have joined our program and earn {n} dollars a "
            "week. Register at {url} today and claim your bonus, places are limited.\n")
WORDS = ("meeting budget report project customer order invoice schedule team review draft "
         "update question answer office travel contract price delivery account").split()


def test_varied_copies_share_a_key_and_unrelated_texts_do_not():
    first = set(band_keys(TEMPLATE.format(greeting="Dear", name="Peter", n=500,
                                          url="http://a.test/?id=1")))
    rnd = random.Random(1)
    for i in range(50):
        copy = TEMPLATE.format(greeting=rnd.choice(["Hello", "Hi", "Dear"]),
                               name=rnd.choice(["Mary", "Zhang Wei", "Bob Smith"]),
                               n=rnd.randint(1, 99999), url=f"https://x{i}.test/r/{i}")
        assert first & set(band_keys(copy)), copy
    for _ in range(50):
        other = " ".join(rnd.choice(WORDS) for _ in range(60))
        assert not first & set(band_keys(other))
    assert band_keys("thanks, see you tomorrow") is None


def test_cjk_text_is_fingerprinted_by_characters():
    a = band_keys("尊敬的客户您好，本公司长期代开各类发票，税点低，质量保证，欢迎来电咨询，联系人张先生")
    b = band_keys("尊敬的朋友您好，本公司长期代开各类发票，税点低，质量保证，欢迎来电咨询，联系人李先生")
    assert a and b and set(a) & set(b)


def test_two_workers_count_each_others_copies_through_the_store():
    store = MemoryStore()
    one, two = Counter(store), Counter(store)
    keys = ["k1", "k2"]
    one.add(keys, 100)
    assert one.count(keys, 100) == 1 and two.count(keys, 100) == 0
    one.flush()
    two.add(keys, 101)
    assert two.count(keys, 101) == 2
    two.flush()
    assert one.count(keys, 101) == 2
    assert one.count(keys, 200) == 0          # the window has moved on
    store.close()
