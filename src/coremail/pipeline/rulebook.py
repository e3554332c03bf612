"""The `coremail filter` rules, checked and compiled: what a pattern may be,
what it matches, and the rule set every SMTP worker holds.

Kinds: ip (an address or CIDR, IPv4 or IPv6), sender (an address or
@domain, which takes its subdomains too), keyword (a word or phrase in the
decoded subject or body, any case; ASCII words match whole words, other
text, CJK included, anywhere), header ("Name: regex" over the decoded
field). Actions: reject, junk, allow, score:N.

Header regexes run under the `regex` module's time-out (REGEX_TIMEOUT each):
a rule an administrator wrote badly costs a message at most that, and says
so in the trace, instead of holding an SMTP worker. The rule set is read
from the store at most every RELOAD seconds per process (rules added in
one process are live in every other within that time); hits are counted in
memory and written in one batch (`take_hits`), never a write per message.
"""
from __future__ import annotations

import ipaddress
import re
import threading
import time
from dataclasses import dataclass, field

import regex

from ..mail.address import AddressError, normalise_domain, parse_address
from ..store.interfaces import FilterRule, Store

KINDS = ("ip", "sender", "keyword", "header")
ACTIONS = ("reject", "junk", "allow", "score")
REGEX_TIMEOUT = 0.05     # seconds one header regex may take on one field
RELOAD = 2.0             # seconds a process keeps the rule set before reading it again
_WORD = re.compile(r"[A-Za-z0-9_' -]+")
_SPACES = re.compile(r"\s+")


class RuleError(ValueError):
    """A rule that cannot be added; the words say why."""


def parse_action(text: str) -> tuple[str, float]:
    """"reject", "junk", "allow" or "score:N" -> (action, points)."""
    t = text.strip().lower()
    if t in ACTIONS and t != "score":
        return t, 0.0
    if t.startswith("score:"):
        try:
            points = float(t[6:])
        except ValueError:
            raise RuleError(f"{text!r}: score:N wants a number, e.g. score:5 or score:-2.5") \
                from None
        if not -1000 <= points <= 1000:
            raise RuleError("a score must be between -1000 and 1000")
        return "score", points
    raise RuleError(f"unknown action {text!r}: use reject, junk, allow or score:N")


def normalise_pattern(kind: str, pattern: str) -> str:
    """The pattern as stored, or RuleError saying what is wrong with it."""
    p = pattern.strip()
    if not p:
        raise RuleError("the pattern is empty")
    if kind == "ip":
        try:
            net = ipaddress.ip_network(p, strict=False)
        except ValueError:
            raise RuleError(f"{p!r} is not an IP address or CIDR network (e.g. 192.0.2.7, "
                            "198.51.100.0/24, 2001:db8::/32)") from None
        return str(net.network_address) if net.num_addresses == 1 else str(net)
    if kind == "sender":
        try:
            if p.startswith("@"):
                return "@" + normalise_domain(p[1:])
            return parse_address(p).key
        except AddressError as e:
            raise RuleError(f"{p!r} is not an address or @domain: {e}") from None
    if kind == "keyword":
        return _SPACES.sub(" ", p).lower()
    if kind == "header":
        name, sep, rx = p.partition(":")
        if not sep or not name.strip() or " " in name.strip() or not rx.strip():
            raise RuleError('a header rule is "Name: regex", e.g. "X-Mailer: (?i)bulk ?mailer"')
        try:
            regex.compile(rx.strip())
        except regex.error as e:
            raise RuleError(f"the regex {rx.strip()!r} does not compile: {e}") from None
        return f"{name.strip()}: {rx.strip()}"
    raise RuleError(f"unknown kind {kind!r}: use ip, sender, keyword or header")


def rule_name(rule: FilterRule) -> str:
    """The test name of a rule (X-Spam-Status, trace): KIND_ACTION_ID."""
    action = "BLOCK" if rule.action == "reject" else rule.action.upper()
    return f"{rule.kind.upper()}_{action}_{rule.id}"


def describe(rule: FilterRule) -> str:
    """The rule in an administrator's words (the trace, filter test)."""
    whose = f"{rule.user}'s" if rule.user else "the server's"
    what = {"ip": "client address", "sender": "sender", "keyword": "keyword",
            "header": "header rule"}[rule.kind]
    return f"{whose} rule {rule.id}: {what} {rule.pattern!r}"


@dataclass
class Scope:
    """The rules of one owner (the server, or one user)."""

    nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, FilterRule]] = \
        field(default_factory=list)
    senders: dict[str, list[FilterRule]] = field(default_factory=dict)
    words: dict[str, list[FilterRule]] = field(default_factory=dict)      # whole ASCII words
    phrases: list[FilterRule] = field(default_factory=list)              # anywhere (CJK...)
    headers: list[tuple[str, regex.Pattern, FilterRule]] = field(default_factory=list)
    word_rx: re.Pattern | None = None

    def add(self, r: FilterRule) -> None:
        if r.kind == "ip":
            self.nets.append((ipaddress.ip_network(r.pattern, strict=False), r))
        elif r.kind == "sender":
            self.senders.setdefault(r.pattern, []).append(r)
        elif r.kind == "keyword":
            if _WORD.fullmatch(r.pattern) and r.pattern.strip(" '-"):
                self.words.setdefault(r.pattern, []).append(r)
            else:
                self.phrases.append(r)
        elif r.kind == "header":
            name, _, rx = r.pattern.partition(":")
            self.headers.append((name.strip().lower(), regex.compile(rx.strip()), r))

    def seal(self) -> None:
        if self.words:
            alts = "|".join(re.escape(w).replace(r"\ ", r"\s+")
                            for w in sorted(self.words, key=len, reverse=True))
            self.word_rx = re.compile(rf"(?<![\w])(?:{alts})(?![\w])")

    @property
    def content(self) -> bool:
        return bool(self.words or self.phrases or self.headers)

    def by_client(self, ip: str, sender: str) -> list[FilterRule]:
        """ip and sender rules matching this client address and sender key."""
        out: list[FilterRule] = []
        if self.nets:
            addr = _address(ip)
            if addr is not None:
                out.extend(r for net, r in self.nets if addr.version == net.version
                           and addr in net)
        if self.senders and sender:
            out.extend(self.senders.get(sender, ()))
            domain = sender.rpartition("@")[2]
            while domain:
                out.extend(self.senders.get("@" + domain, ()))
                domain = domain.partition(".")[2]
        return out

    def by_content(self, searchable: str, headers: list[tuple[str, str]]
                   ) -> tuple[list[FilterRule], list[str]]:
        """(keyword and header rules matching, words on regexes that ran too long)."""
        out: list[FilterRule] = []
        slow: list[str] = []
        if self.word_rx is not None:
            found = {_SPACES.sub(" ", m.group(0)) for m in self.word_rx.finditer(searchable)}
            for w in sorted(found):
                out.extend(self.words.get(w, ()))
        if self.phrases:
            flat = _SPACES.sub(" ", searchable)
            out.extend(r for r in self.phrases if r.pattern in flat)
        for name, rx, r in self.headers:
            try:
                if any(rx.search(v, timeout=REGEX_TIMEOUT) for n, v in headers if n == name):
                    out.append(r)
            except TimeoutError:
                slow.append(f"{describe(r)} took longer than {REGEX_TIMEOUT * 1000:g} ms and "
                            "was skipped")
        return out, slow


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        a = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


class RuleSet:
    """Every rule compiled, by owner ("" is the server)."""

    def __init__(self, rules: list[FilterRule]):
        self.scopes: dict[str, Scope] = {}
        for r in rules:
            try:
                self.scopes.setdefault(r.user, Scope()).add(r)
            except (ValueError, regex.error):
                continue   # written by hand into the database: skip, never crash a session
        for s in self.scopes.values():
            s.seal()

    def scope(self, user: str) -> Scope | None:
        return self.scopes.get(user)


class RuleBook:
    """The current RuleSet of this process, reloaded from the store every
    RELOAD seconds, and the hits counted since the last batch."""

    def __init__(self, store: Store, *, reload: float = RELOAD):
        self.store = store
        self.reload = reload
        self._set: RuleSet | None = None
        self._loaded = 0.0
        self._hits: dict[int, int] = {}
        self._lock = threading.Lock()
        self.counting = True     # False: `coremail filter test`, which changes nothing

    def cached(self) -> RuleSet | None:
        """The rule set if fresh, else None: call `load` on a thread."""
        if self._set is not None and time.monotonic() - self._loaded < self.reload:
            return self._set
        return None

    def load(self) -> RuleSet:
        """Read the rules from the store (blocking), writing pending hits first."""
        self.flush()
        rules = RuleSet(self.store.list_filter_rules())
        self._set, self._loaded = rules, time.monotonic()
        return rules

    def get(self) -> RuleSet:
        return self.cached() or self.load()

    def hit(self, rules: list[FilterRule]) -> None:
        if not self.counting:
            return
        with self._lock:
            for r in rules:
                self._hits[r.id] = self._hits.get(r.id, 0) + 1

    @property
    def pending(self) -> bool:
        return bool(self._hits)

    def flush(self) -> None:
        """Write the hits counted so far in one transaction (blocking)."""
        with self._lock:
            hits, self._hits = self._hits, {}
        if hits:
            try:
                self.store.add_filter_hits(hits)
            except Exception:
                with self._lock:   # try again with the next batch
                    for k, n in hits.items():
                        self._hits[k] = self._hits.get(k, 0) + n
