"""Generated spam and ham for the intelligent score's tests: each message
draws words from its kind's vocabulary and a shared one, so the classes
overlap as real mail does. Deterministic per (kind, n)."""
from __future__ import annotations

import random

SHARED = ("please the you for this and with today your time information new free "
          "order team about week email more help need").split()
SPAM = ("viagra cheap pills discount winner lottery prize casino bonus credit loan "
        "mortgage refinance guaranteed unsubscribe offer limited millions dollars "
        "investment rolex replica pharmacy weight lose").split()
HAM = ("meeting agenda project review patch release notes kernel python build "
       "deadline schedule lunch thanks regards minutes draft budget report branch "
       "merge test server").split()
SPAM_ZH = "发票 代开 优惠 中奖 免费 赚钱 贷款 低价 促销 返利 加微信 点击 领取 限时 折扣".split()
HAM_ZH = "会议 项目 报告 周五 讨论 方案 预算 团队 进度 合同 评审 文档 安排 客户 谢谢".split()
NEWS = ("digest weekly newsletter edition subscribers featured stories events "
        "community highlights partner sponsored").split()
SPAM_HOSTS = ("cheap-pills.example", "win-big.example", "loans-now.example")
HAM_HOSTS = ("git.example.org", "docs.example.org", "wiki.example.org")


def message(kind: str, n: int, *, lang: str = "en", to: str = "alice@example.test") -> bytes:
    rnd = random.Random(f"{kind}-{lang}-{n}")
    spam = kind == "spam"
    if kind == "news":
        words, spam = NEWS, False
        body = " ".join(rnd.choice(words) if rnd.random() < 0.6 else rnd.choice(SHARED)
                        for _ in range(60))
        subject = f"The weekly digest no. {n}"
        ctype = "text/plain; charset=us-ascii"
    elif lang == "zh":
        words = SPAM_ZH if spam else HAM_ZH
        body = "".join(rnd.choice(words) + rnd.choice("，。 ") for _ in range(30))
        subject = "".join(rnd.sample(words, 3))
        ctype = "text/plain; charset=utf-8"
    else:
        words = SPAM if spam else HAM
        body = " ".join(rnd.choice(words) if rnd.random() < 0.6 else rnd.choice(SHARED)
                        for _ in range(60))
        subject = " ".join(rnd.sample(words, 3)).title()
        ctype = "text/plain; charset=us-ascii"
    host = rnd.choice(SPAM_HOSTS if spam else HAM_HOSTS)
    sender = f"{'promo' if spam else 'colleague'}{n}@{'deals.example' if spam else 'example.org'}"
    if kind == "news":
        sender, host = "digest@news.example.net", "news.example.net"
    if spam and lang == "en" and n % 2:
        ctype = "text/html; charset=us-ascii"
        body = (f"<html><body><script>var x='{rnd.random()}';</script><p>{body}</p>"
                f"<a href=\"http://{host}/r/{n}\">click</a></body></html>")
    else:
        body += f"\nhttp://{host}/page/{n}\n"
    from email.header import Header
    subj = Header(subject, "utf-8").encode() if lang == "zh" else subject
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subj}\r\n"
            f"Message-ID: <{kind}.{lang}.{n}@{'deals.example' if spam else 'example.org'}>\r\n"
            f"Date: Tue, 1 Dec 2026 10:{n % 60:02d}:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"{body}\r\n").encode("utf-8")


def corpus(kind: str, count: int, start: int = 0, **kw) -> list[bytes]:
    return [message(kind, n, **kw) for n in range(start, start + count)]
