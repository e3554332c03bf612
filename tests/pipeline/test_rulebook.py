"""`coremail filter` rules checked and matched: IPv4/IPv6 CIDR (and
IPv4-mapped clients), senders by address and by domain with its subdomains,
keywords as whole ASCII words or anywhere for CJK, header regexes under a
time limit; bad patterns refused in words; hits counted in batches."""
from __future__ import annotations

import pytest

from coremail.pipeline.rulebook import (RuleBook, RuleError, RuleSet, normalise_pattern,
                                        parse_action, rule_name)
from coremail.store.interfaces import FilterRule
from coremail.store.memory import MemoryStore


def rules(*specs) -> RuleSet:
    return RuleSet([FilterRule(i + 1, k, normalise_pattern(k, p), a) for i, (k, p, a)
                    in enumerate(specs)])


def test_ip_rules_match_v4_v6_and_mapped_clients():
    s = rules(("ip", "198.51.100.0/24", "reject"), ("ip", "2001:db8::/32", "junk"),
              ("ip", "192.0.2.7", "allow")).scope("")
    assert [r.id for r in s.by_client("198.51.100.9", "")] == [1]
    assert [r.id for r in s.by_client("::ffff:198.51.100.9", "")] == [1]
    assert [r.id for r in s.by_client("2001:db8:1::5", "")] == [2]
    assert [r.id for r in s.by_client("192.0.2.7", "")] == [3]
    assert s.by_client("192.0.2.8", "") == [] and s.by_client("not-an-ip", "") == []


def test_sender_rules_by_address_and_domain_with_subdomains():
    s = rules(("sender", "Bad@Spam.TEST", "reject"), ("sender", "@junk.test", "junk")).scope("")
    assert [r.id for r in s.by_client("192.0.2.1", "bad@spam.test")] == [1]
    assert [r.id for r in s.by_client("192.0.2.1", "x@mail.junk.test")] == [2]
    assert s.by_client("192.0.2.1", "x@notjunk.test") == []


def test_keywords_whole_words_any_case_and_cjk_anywhere():
    s = rules(("keyword", "Sex", "score:3"), ("keyword", "free  money", "junk"),
              ("keyword", "发票", "reject")).scope("")
    found, _ = s.by_content("essex county", [])
    assert found == []
    found, _ = s.by_content("hot sex! and free\nmoney 代开发票", [])
    assert sorted(r.id for r in found) == [1, 2, 3]


def test_header_rules_and_the_regex_time_limit():
    s = rules(("header", "X-Mailer: (?i)bulk", "score:2"), ("header", "Subject: (a|aa)+$",
                                                              "reject")).scope("")
    found, slow = s.by_content("", [("x-mailer", "BULK 2"), ("subject", "a" * 40 + "!")])
    assert [r.id for r in found] == [1]
    assert slow and "took longer than 50 ms" in slow[0]


@pytest.mark.parametrize("kind,pattern,words", [
    ("ip", "1.2.3", "not an IP address"), ("sender", "@", "not an address"),
    ("header", "no colon", '"Name: regex"'), ("header", "X: (", "does not compile"),
    ("keyword", "  ", "empty"), ("color", "x", "unknown kind")])
def test_bad_patterns_are_refused_in_words(kind, pattern, words):
    with pytest.raises(RuleError, match=words):
        normalise_pattern(kind, pattern)


def test_actions_and_names():
    assert parse_action("score:-2.5") == ("score", -2.5) and parse_action("JUNK") == ("junk", 0)
    with pytest.raises(RuleError):
        parse_action("score:lots")
    with pytest.raises(RuleError):
        parse_action("drop")
    assert rule_name(FilterRule(7, "sender", "@x.test", "reject")) == "SENDER_BLOCK_7"


def test_hits_are_written_in_one_batch():
    store = MemoryStore()
    r = store.add_filter_rule("ip", "192.0.2.1", "reject")
    book = RuleBook(store)
    rs = book.get()
    assert book.cached() is rs
    for _ in range(3):
        book.hit([r])
    assert store.list_filter_rules()[0].hits == 0
    book.flush()
    assert store.list_filter_rules()[0].hits == 3
    book.counting = False
    book.hit([r])
    book.flush()
    assert store.list_filter_rules()[0].hits == 3
    store.close()
