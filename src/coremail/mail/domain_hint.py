"""Spot a likely misspelt mail domain ("gmial.com") and name the intended one.

Used when a domain does not exist, so a bounce or an error can say "did you
mean gmail.com?". It only compares against a fixed list of big providers.
"""

from __future__ import annotations

# Big consumer mail providers, roughly most used first: ties go to the earlier.
PROVIDERS: tuple[str, ...] = (
    "gmail.com", "googlemail.com",
    "outlook.com", "hotmail.com", "live.com", "msn.com",
    "hotmail.co.uk", "hotmail.fr", "hotmail.de", "outlook.de",
    "yahoo.com", "yahoo.co.uk", "yahoo.co.jp", "yahoo.fr", "yahoo.de", "ymail.com",
    "icloud.com", "me.com", "mac.com",
    "aol.com",
    "qq.com", "vip.qq.com", "foxmail.com",
    "163.com", "126.com", "yeah.net", "vip.163.com",
    "sina.com", "sina.cn", "sohu.com", "aliyun.com", "139.com",
    "gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de",
    "yandex.ru", "yandex.com", "mail.ru", "rambler.ru",
    "protonmail.com", "proton.me", "pm.me",
    "mail.com", "zoho.com", "fastmail.com", "tutanota.com",
    "orange.fr", "free.fr", "laposte.net", "libero.it", "naver.com",
    "comcast.net", "verizon.net", "att.net",
)

_KNOWN = frozenset(PROVIDERS)


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance where swapping two neighbours also costs one.

    Returns ``limit`` as soon as the distance is known to be at least that,
    which keeps the comparison against the whole list cheap.
    """
    if abs(len(a) - len(b)) >= limit:
        return limit
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        # A swap reaches back two rows, so both must be past the limit.
        if min(cur) >= limit and min(prev) >= limit:
            return limit
        prev2, prev = prev, cur
    return min(prev[-1], limit)


def _allowed(provider: str) -> int:
    # Short names sit close to many real domains ("qq.com" vs "qz.com"), so
    # they only match on a single slip; longer ones tolerate two.
    first = provider.split(".", 1)[0]
    return 1 if len(first) <= 4 else 2


def suggest_domain(domain: str) -> str | None:
    """The big provider ``domain`` is probably a typing mistake for, or None.

    None for a domain that is itself on the list, for anything not close to
    one, and for an empty or non-ASCII input. Call it only once a domain
    has proved not to work: a close but real domain would get a false hint.
    """
    d = domain.strip().strip("[]").rstrip(".").lower()
    if not d or not d.isascii() or d in _KNOWN or "." not in d:
        return None
    best: tuple[int, int, str] | None = None
    for rank, provider in enumerate(PROVIDERS):
        allowed = _allowed(provider)
        dist = edit_distance(d, provider, limit=allowed + 1)
        if dist <= allowed and (best is None or (dist, rank) < best[:2]):
            best = (dist, rank, provider)
    return best[2] if best else None
