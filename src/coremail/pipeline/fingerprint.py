"""The fingerprint counter: too many similar messages within
`antispam.fingerprint_window` and further copies are refused ("too many
similar messages"), whoever sends them, from outside or (with
`fingerprint_internal`) from a logged-in account that may be hijacked.

Why MinHash with LSH bands over word shingles (and not simhash or an exact
hash): a spray that changes the greeting, the name, a number or a link in
each copy changes only the few 3-word shingles around each change, so the
copies keep a high Jaccard similarity, which MinHash estimates directly;
banding turns "similar" into "shares one of BANDS short keys", which is an
equality look-up any SQL index answers, so counting needs no similarity
search. Simhash would need a Hamming-distance search that SQL cannot index.
Numbers, URLs and addresses are normalised before shingling, so those
changes cost nothing at all. One-permutation hashing (one 64-bit hash per
shingle, made from CRC-32s of its words, its bits split into bin and value)
keeps the cost near a microsecond per word, over the first MAX_TOKENS words.

Counts live in the store (every SMTP worker and node sees them) per band
key and time slot (a sixth of the window): one indexed read per message;
this process's new counts go in one batched upsert every FLUSH seconds.
"""
from __future__ import annotations

import hashlib
import re
import threading
import time
import zlib
from concurrent.futures import Executor

from ..store.interfaces import Store
from .checks import CheckResult, LaterFlush, Message, Score
from .verdict import Verdict

BINS = 32                # MinHash values
ROWS = 4                 # values per band: copies ~80% alike share a band (p > 0.98)
BANDS = BINS // ROWS
SHINGLE = 3              # words per shingle
MIN_TOKENS = 12          # shorter texts are too common to mean anything
MAX_TOKENS = 500         # a spray shows in its first words ...
MAX_CHARS = 4000         # ... and characters
SLOTS = 6                # the window in slots
FLUSH = 0.25             # seconds between writes of this process's counts
TOO_MANY = "too many similar messages have come in recently; this looks like a mass mailing"

_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]|[^\W\d_]+|\d+")
_MASK = (1 << 64) - 1


def tokens(text: str) -> list[str]:
    """Normalised words: lower case, links, addresses and numbers each one
    token, CJK characters one by one."""
    t = text[:MAX_CHARS].lower()
    if "://" in t or "www." in t:
        t = _URL.sub(" url ", t)
    if "@" in t:
        t = _EMAIL.sub(" @ ", t)
    return [("0" if w.isdigit() else w) for w in _TOKEN.findall(t)[:MAX_TOKENS]]


def band_keys(text: str) -> list[str] | None:
    """The BANDS keys of a text, or None when it is too short to count."""
    words = tokens(text)
    if len(words) < MIN_TOKENS:
        return None
    memo: dict[str, int] = {}
    th = [memo.get(w) or memo.setdefault(w, zlib.crc32(w.encode()) | 1) for w in words]
    mins = [_MASK] * BINS
    for i in range(len(th) - SHINGLE + 1):
        # a 3-word shingle's 64-bit hash from its words' CRCs, mixed (splitmix64's finaliser)
        h = ((th[i] << 40) ^ (th[i + 1] << 20) ^ th[i + 2]) & _MASK
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
        h ^= h >> 31
        b, v = h % BINS, h // BINS
        if v < mins[b]:
            mins[b] = v
    # densification: an empty bin borrows the next filled one (with an offset of its own)
    filled = [b for b in range(BINS) if mins[b] != _MASK]
    if len(filled) < BINS:
        orig = list(mins)
        for b in range(BINS):
            if orig[b] == _MASK:
                k = next(k for k in range(1, BINS) if orig[(b + k) % BINS] != _MASK)
                mins[b] = (orig[(b + k) % BINS] + k * 0x9E3779B97F4A7C15) & _MASK
    keys = []
    for band in range(BANDS):
        row = ",".join(str(v) for v in mins[band * ROWS:(band + 1) * ROWS])
        keys.append(hashlib.blake2b(f"{band}:{row}".encode(), digest_size=12).hexdigest())
    return keys


class Counter:
    """Counts per band key: the store's plus this process's not yet written."""

    def __init__(self, store: Store):
        self.store = store
        self._pending: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._forget = 0

    def count(self, keys: list[str], slot: int) -> int:
        """The most similar messages any one key has seen in the window (blocking)."""
        since = slot - SLOTS + 1
        seen = self.store.fingerprint_counts(keys, since)
        wanted = set(keys)
        with self._lock:
            for (k, s), n in self._pending.items():
                if s >= since and k in wanted:
                    seen[k] = seen.get(k, 0) + n
        return max(seen.values(), default=0)

    def add(self, keys: list[str], slot: int) -> None:
        with self._lock:
            for k in keys:
                self._pending[(k, slot)] = self._pending.get((k, slot), 0) + 1
            self._forget = max(self._forget, slot - SLOTS)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            try:
                self.store.fingerprint_add(pending, self._forget)
            except Exception:
                with self._lock:
                    for k, n in pending.items():
                        self._pending[k] = self._pending.get(k, 0) + n


class FingerprintCheck:
    name = "fingerprint"
    kind = "spam"

    def __init__(self, store: Store, executor: Executor | None = None):
        self.counter = Counter(store)
        self.executor = executor
        self._flush = LaterFlush(self.counter.flush, FLUSH, self.executor)

    async def __call__(self, msg: Message) -> CheckResult | None:
        a = msg.settings.antispam
        if a.fingerprint_threshold <= 0:
            return None
        if msg.client.authenticated and not a.fingerprint_internal:
            return None
        text = await msg.text()
        keys = band_keys(text.subject + "\n" + text.body)
        if keys is None:
            return None
        slot = int(time.time() // max(float(a.fingerprint_window) / SLOTS, 1.0))
        if msg.dry_run:
            seen = await msg.run(self.counter.count, keys, slot)
        else:
            seen = await msg.run(self._count_and_add, keys, slot)
            self._flush.schedule()
        if seen < a.fingerprint_threshold:
            return None
        words = (f"{seen} similar message(s) within {a.fingerprint_window} "
                 f"(threshold {a.fingerprint_threshold})")
        return CheckResult(Verdict(550, "5.7.1", TOO_MANY),
                           scores=[Score("FINGERPRINT_TOO_MANY", 0.0, words)])

    def _count_and_add(self, keys: list[str], slot: int) -> int:
        seen = self.counter.count(keys, slot)
        self.counter.add(keys, slot)
        return seen


    def close(self) -> None:
        self.counter.flush()
