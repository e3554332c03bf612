"""The intelligent score without a server: clues (decoded subject, HTML as
text, link hosts, CJK bigrams, never our own X-Spam fields), no score before
enough training, trained models that tell spam from ham in English and in
Chinese, the per-user model pooled with the global one, and the check's
bands in X-Spam-Status through the real decide()."""
from __future__ import annotations

from coremail.config import build_settings
from coremail.mail.address import parse_address
from coremail.pipeline.bayes.check import BayesCheck
from coremail.pipeline.bayes.classify import chi2q, combine
from coremail.pipeline.bayes.model import MIN_HAM, MIN_SPAM, Model, band, digest, item
from coremail.pipeline.bayes.tokens import tokenize
from coremail.pipeline.checks import Message
from coremail.pipeline.decide import decide
from coremail.pipeline.envelope import Client, Envelope, Recipient
from coremail.store.interfaces import GLOBAL_MODEL
from coremail.store.memory import MemoryStore
from tests.support.mailgen import corpus, message

HTML = (b"From: a@b.example\r\nSubject: =?utf-8?b?5YWN6LS55Y+R56Wo?=\r\nX-Spam-Status: Yes, score=9\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + "<html><head><style>.hidden{}</style></head><body><script>evilcode()</script>"
        "<p>我们公司提供正规发票</p><td>Cheap</td><td>Pills</td> V<!-- x -->iagra "
        "<a href=\"http://www.shop.example.co.uk/x?a=1\">here</a></body></html>\r\n".encode())


def test_clues_of_a_message():
    toks = tokenize(HTML)
    assert {"s:免费", "s:费发", "s:发票"} <= set(toks)             # RFC 2047 subject, bigrams
    assert {"我们", "公司", "发票"} <= set(toks) and "我们公司" not in toks
    assert {"cheap", "pills", "viagra"} <= set(toks)               # block tags split words
    assert "evilcode" not in toks and "hidden" not in toks         # script and style dropped
    assert {"url:www.shop.example.co.uk", "url:example.co.uk"} <= set(toks)
    assert not any("x-spam" in t for t in toks)                    # never our own verdicts
    assert "from:dom:b.example" in toks


def test_chi_square_arithmetic():
    assert abs(chi2q(0.0, 4) - 1.0) < 1e-12 and chi2q(100.0, 4) < 1e-15
    assert combine([0.99] * 10) > 0.99 and combine([0.01] * 10) < 0.01
    assert abs(combine([0.99, 0.01] * 5) - 0.5) < 0.05             # conflict: unsure
    assert band(0.9995) == ("BAYES_999", 6.0) and band(0.0)[0] == "BAYES_00"


def test_digest_ignores_our_trace_fields():
    raw = message("spam", 1)
    delivered = (b"Received: from x by mail.example.test; Tue, 1 Dec 2026\r\n"
                 b"X-Spam-Status: No, score=0.0 required=6.0 tests=NONE\r\n" + raw)
    assert digest(raw) == digest(delivered) == digest(b"From x@y Tue Dec  1 2026\n" + raw)
    assert digest(raw) != digest(message("spam", 2))


def _trained(store, spam=MIN_SPAM + 10, ham=MIN_HAM + 10, lang="en", owner=GLOBAL_MODEL):
    train(store, owner, [(r, True) for r in corpus("spam", spam, lang=lang)]
          + [(r, False) for r in corpus("ham", ham, lang=lang)])
    return Model(store)


def train(store, owner, messages):
    return store.bayes_train(owner, [item(raw, spam) for raw, spam in messages])


def test_untrained_gives_no_score_and_says_why():
    store = MemoryStore()
    m = _trained(store, spam=MIN_SPAM - 1)
    j = m.judge(tokenize(message("spam", 500)))[None]
    assert j.prob is None and j.band is None
    assert f"{MIN_SPAM - 1} spam" in j.reason and "needed" in j.reason


def test_trained_tells_spam_from_ham():
    store = MemoryStore()
    m = _trained(store)
    for n in range(500, 520):
        assert m.judge(tokenize(message("spam", n)))[None].prob > 0.99
        assert m.judge(tokenize(message("ham", n)))[None].prob < 0.01
    j = m.judge(tokenize(message("spam", 600)))[None]
    assert j.spam_clues and all(c.prob > 0.5 for c in j.spam_clues)
    assert "spam probability" in j.words() and "by global: 40 spam, 40 ham" in j.words()
    assert "towards spam: " in j.words() and "towards ham: " in j.words()


def test_a_chinese_spam_and_ham_pair():
    store = MemoryStore()
    m = _trained(store, lang="zh")
    spam, ham = message("spam", 900, lang="zh"), message("ham", 900, lang="zh")
    assert m.judge(tokenize(spam))[None].prob > 0.99
    assert m.judge(tokenize(ham))[None].prob < 0.01
    top = m.judge(tokenize(spam))[None].spam_clues
    assert sum(len(c.token.removeprefix("s:")) == 2 for c in top) >= 3   # bigrams carry it


def test_a_users_model_moves_only_their_score():
    store = MemoryStore()
    store.add_domain("example.test")
    amy = store.add_user("amy@example.test", password_hash="x", quota=0)
    bob = store.add_user("bob@example.test", password_hash="x", quota=0)
    m = _trained(store)
    probe = tokenize(message("news", 800))
    before = m.judge(probe, [None, amy.id, bob.id])
    # Amy thinks the weekly digest is spam; she says so a few times.
    train(store, amy.id, [(message("news", n), True) for n in range(700, 705)])
    got = m.judge(probe, [None, amy.id, bob.id])
    assert got[bob.id].prob == got[None].prob == before[bob.id].prob
    assert before[amy.id].prob < 0.5 and got[amy.id].prob > 0.99
    assert "user" in " ".join(got[amy.id].models)
    assert "user" in " ".join(got[amy.id].models)


def _message(raw: bytes, users) -> Message:
    env = Envelope()
    for u in users:
        env.recipients.append(Recipient(u.address, parse_address(u.address), users=[u]))
    return Message(Client("192.0.2.1", sid="s1"), env, raw, raw[:raw.index(b"\r\n\r\n") + 2],
                   build_settings({}))


async def test_the_check_in_decide():
    store = MemoryStore()
    store.add_domain("example.test")
    amy = store.add_user("amy@example.test", password_hash="x", quota=0)
    check = BayesCheck(store)
    untrained = await check(_message(message("spam", 1), [amy]))         # untrained: no score
    assert not untrained.scores and "not enough training" in untrained.note
    _trained(store)
    d = await decide([check], _message(message("spam", 501), [amy]), timeout=10)
    assert d.tests == ["BAYES_999"] and d.folders == {"amy@example.test": "Junk"}
    assert d.headers[0][1].startswith("Yes, score=6.0 required=6.0 tests=BAYES_999")
    d = await decide([check], _message(message("ham", 501), [amy]), timeout=10)
    assert d.tests == ["BAYES_00"] and not d.folders
    off = _message(message("spam", 501), [amy])
    off.settings = build_settings({"antispam": {"bayes": False}})
    assert await check(off) is None


async def test_scoring_keeps_the_clues_it_meets_from_expiry():
    """The check notes the day on the clues a scored message met (written in
    a batch, once a day each); expiry then forgets only the others."""
    import time

    from coremail.pipeline.bayes.tokens import token_hash

    store = MemoryStore()
    store.add_domain("example.test")
    amy = store.add_user("amy@example.test", password_hash="x", quota=0)
    old = time.time() - 100 * 86400
    store.bayes_train(GLOBAL_MODEL, [item(r, True) for r in corpus("spam", 40)]
                      + [item(r, False) for r in corpus("ham", 40)], now=old)
    size = store.bayes_size(GLOBAL_MODEL)
    check = BayesCheck(store)
    raw = message("spam", 501)
    assert (await check(_message(raw, [amy]))).scores
    met = {h for h in map(token_hash, tokenize(raw))
           if store.bayes_lookup([GLOBAL_MODEL], [h])[1]}
    assert met and not check.seen.note((GLOBAL_MODEL, h) for h in met)  # noted once today
    check.close()                                    # the batch written
    gone = store.bayes_expire(old + 86400, rare=10_000, largest=0)
    assert gone == size - len(met) > 0
    assert all(store.bayes_lookup([GLOBAL_MODEL], [h])[1] for h in met)


def test_hot_tokens_ask_the_store_only_for_new_clues_and_follow_training():
    from coremail.pipeline.bayes.hot import HotTokens

    store = MemoryStore()
    asked: list[list[int]] = []
    real = store.bayes_lookup
    store.bayes_lookup = lambda owners, toks: (asked.append(list(toks)), real(owners, toks))[1]
    store.bayes_train(GLOBAL_MODEL, [item(message("spam", 1), True)])
    hot = HotTokens(store)
    assert hot.lookup([GLOBAL_MODEL], [1, 2]) == real([GLOBAL_MODEL], [1, 2])
    totals, counts = hot.lookup([GLOBAL_MODEL], [2, 3])
    assert asked[-1] == [3] and counts == {}                   # 2 remembered as absent
    from coremail.store.interfaces import BayesItem
    store.bayes_train(GLOBAL_MODEL, [BayesItem("b" * 32, False, [2])])
    totals, counts = hot.lookup([GLOBAL_MODEL], [2, 3])        # new totals: asked afresh
    assert asked[-1] == [2, 3] and counts == {(GLOBAL_MODEL, 2): (0, 1)}
    assert totals == {GLOBAL_MODEL: (1, 1)}
