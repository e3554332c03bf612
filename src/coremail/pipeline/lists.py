"""The allow/block lists and content rules of `coremail filter`, applied.

At RCPT (`rcpt_verdict`): a block of the client's address or the sender by
the server refuses every recipient, one by a recipient's own rule refuses
that recipient (550 5.7.1 in words that never show the pattern); an allow
rule at the same level wins over a block. Authenticated senders are not
held to the server's ip/sender lists (they logged in), only to their
recipients' own rules.

At the end of DATA (`ListCheck`, kind "list", run before the other checks):
allow rules make `decide` skip the spam checks (a recipient's own: keep
that recipient's copy out of Junk), junk rules send copies to Junk, score
rules add points (a recipient's own: for that recipient's folder only),
content reject rules refuse the message (a recipient's own: that
recipient's copy goes to Junk, unless every recipient refuses it).
"""
from __future__ import annotations

from ..store.interfaces import FilterRule
from .checks import CheckResult, LaterFlush, Message, Score
from .envelope import Client, Envelope, Recipient
from .rulebook import RuleBook, RuleSet, describe, rule_name
from .verdict import Verdict

BLOCKED_SENDER = Verdict(550, "5.7.1", "sender is on this server's block list")
BLOCKED_CLIENT = "your address [{ip}] is on this server's block list"
BLOCKED_BY_USER = ("<{rcpt}> does not accept mail from this sender (rejected by user settings); "
                   "the recipient has to change that")
CONTENT_REJECT = "the message matches a content rule of this server"
USER_REJECT = "every recipient's own settings refuse this message (rejected by user settings)"


def _sender_key(env: Envelope) -> str:
    return env.sender.key if env.sender is not None else ""


def _blocks(rules: list[FilterRule]) -> list[FilterRule]:
    """The reject rules, unless an allow rule matched too."""
    if any(r.action == "allow" for r in rules):
        return []
    return [r for r in rules if r.action == "reject"]


def rcpt_verdict(book: RuleBook, rules: RuleSet, client: Client, env: Envelope,
                 rcpt: Recipient) -> Verdict | None:
    """A block of this recipient by the server's or its users' ip/sender rules."""
    sender = _sender_key(env)
    top = rules.scope("")
    if top is not None and not client.authenticated:
        hit = _blocks(top.by_client(client.ip, sender))
        if hit:
            book.hit(hit[:1])
            if hit[0].kind == "ip":
                return Verdict(550, "5.7.1", BLOCKED_CLIENT.format(ip=client.ip))
            return BLOCKED_SENDER
    if not rcpt.users:
        return None
    keep = []
    for u in rcpt.users:
        own = rules.scope(u.address)
        hit = _blocks(own.by_client(client.ip, sender)) if own is not None else []
        if hit:
            book.hit(hit[:1])
        else:
            keep.append(u)
    if not keep and not rcpt.remote:
        return Verdict(550, "5.7.1", BLOCKED_BY_USER.format(rcpt=rcpt.address))
    rcpt.users = keep
    return None


class ListCheck:
    """The rules of `coremail filter` over the whole message."""

    name = "lists"
    kind = "list"

    def __init__(self, book: RuleBook, hits_later: LaterFlush):
        self.book = book
        self._flush = hits_later      # the hits' batch write, shared with RCPT (registry)

    async def __call__(self, msg: Message) -> CheckResult | None:
        rules = self.book.cached() or await msg.run(self.book.load)
        if not rules.scopes:
            return None
        env, client = msg.env, msg.client
        sender = _sender_key(env)
        owners = {u.address: r.address.key for r in env.recipients for u in r.users}
        scopes = [("", rules.scope(""))] + [(o, rules.scope(o)) for o in owners]
        scopes = [(o, s) for o, s in scopes if s is not None]
        if not scopes:
            return None
        text = None
        if any(s.content for _, s in scopes):
            text = await msg.text()
        out = CheckResult()
        matched: list[FilterRule] = []
        rejected: set[str] = set()
        for owner, scope in scopes:
            found = []
            if owner or not client.authenticated:
                found = scope.by_client(client.ip, sender)
            # the server's allow for this client or sender skips its content rules too
            allowed = not owner and any(r.action == "allow" for r in found)
            if text is not None and not allowed:
                more, slow = scope.by_content(text.searchable, text.headers)
                found += more
                out.scores.extend(Score("HEADER_RULE_SLOW", 0.0, w) for w in slow)
            for r in found:
                matched.append(r)
                self._apply(out, r, owners.get(owner, ""), msg, rejected)
        if rejected and out.verdict is None:
            keys = {r.address.key for r in env.recipients if r.users}
            if keys and rejected >= keys and not any(r.remote for r in env.recipients):
                out.verdict = Verdict(550, "5.7.1", USER_REJECT)
            else:
                for key in rejected:
                    out.folders[key] = "Junk"
        if matched and not msg.dry_run:
            self.book.hit(matched)
            self._flush.schedule()
        return out if matched or out.scores else None

    @staticmethod
    def _apply(out: CheckResult, r: FilterRule, rcpt: str, msg: Message,
               rejected: set[str]) -> None:
        """One matching rule into the result; rcpt: the recipient of a user's rule."""
        name, words = rule_name(r), describe(r)
        points = r.points if r.action == "score" else 0.0
        if r.action == "score" and rcpt:
            out.points_for[rcpt] = out.points_for.get(rcpt, 0.0) + points
            points = 0.0
            words += f" ({r.points:+g} for {rcpt} only)"
        out.scores.append(Score(name, points, words))
        if r.action == "allow":
            if rcpt:
                out.allowed.add(rcpt)
            elif r.kind in ("ip", "sender", "keyword", "header"):
                out.allow = True
        elif r.action == "junk":
            for rc in msg.env.recipients:
                if not rcpt or rc.address.key == rcpt:
                    out.folders[rc.address.key] = "Junk"
        elif r.action == "reject":
            if rcpt:
                rejected.add(rcpt)
            elif r.kind in ("keyword", "header"):
                out.verdict = Verdict(550, "5.7.1", CONTENT_REJECT)
            else:   # an ip/sender block that RCPT let through (an authenticated sender)
                pass

