"""The filter rules (`coremail filter`, the webadmin's Anti-spam page and
the webmail's own block and allow lists): list, add and delete rules, and
`test`, which runs a message through the very Pipeline SMTP uses (RCPT
verdicts, then every message check) with nothing counted or changed.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email.utils import getaddresses

from ..config import Settings
from ..mail.address import AddressError, parse_address
from ..mail.text import extract
from ..pipeline.decide import Decision
from ..pipeline.envelope import Client, Envelope
from ..pipeline.rulebook import KINDS, RuleError, normalise_pattern, parse_action
from ..pipeline.rules import Pipeline
from ..pipeline.verdict import Verdict
from ..store.interfaces import FilterRule, Store

__all__ = ["FilterAdmin", "RuleError", "TestReport", "OWN_ACTIONS"]

# What a user may do with a sender or domain in their own lists (webmail).
OWN_ACTIONS = ("junk", "reject", "allow")


def action_text(r: FilterRule) -> str:
    return f"score:{r.points:g}" if r.action == "score" else r.action


@dataclass
class TestReport:
    """What would happen to a message: each step in words."""

    client: Client
    sender: str
    steps: list[str] = field(default_factory=list)       # MAIL, RCPT lines
    decision: Decision | None = None
    verdict: Verdict | None = None                       # the final answer
    folders: dict[str, str] = field(default_factory=dict)

    def lines(self, settings: Settings) -> list[str]:
        out = [f"client [{self.client.ip}] helo {self.client.helo or '-'} on port 25 "
               f"(outside, not logged in), sender <{self.sender}>"]
        out.extend(self.steps)
        d = self.decision
        if d is not None:
            for ran in d.ran:
                if ran.skipped:
                    out.append(f"check {ran.name}: skipped ({ran.skipped})")
                elif ran.error:
                    out.append(f"check {ran.name}: no answer ({ran.error})")
                elif ran.result is None or not (ran.result.scores or ran.result.verdict):
                    note = ran.result.note if ran.result is not None else ""
                    out.append(f"check {ran.name}: nothing found" + (f" ({note})" if note else ""))
                else:
                    out.append(f"check {ran.name}:")
                    for s in ran.result.scores:
                        out.append(f"  {s.name} {s.points:+g}  {s.words}")
                    if ran.result.verdict is not None:
                        out.append(f"  refuses: {ran.result.verdict}")
            a = settings.antispam
            out.append(f"score {d.score:g} (junk at {a.junk_score:g}, reject at "
                       f"{a.reject_score:g})")
        if self.verdict is not None and not self.verdict.ok:
            out.append(f"result: refused: {self.verdict}")
        elif d is not None:
            where = ", ".join(f"{k} -> {v}" for k, v in self.folders.items())
            out.append(f"result: accepted ({where})" if where else "result: accepted")
            out.extend(f"adds {k}: {v}" for k, v in d.headers)
        return out


class FilterAdmin:
    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings

    def list(self, user: str | None = None) -> list[FilterRule]:
        """Every rule, or (user given: the webmail's own lists) that user's only."""
        rules = self.store.list_filter_rules()
        return rules if user is None else [r for r in rules if r.user == user.lower()]

    def lines(self) -> list[str]:
        """`filter list`: id, kind, pattern, action, scope, hits (and the note)."""
        out = []
        for r in self.list():
            scope = r.user or "server"
            note = f"  # {r.note}" if r.note else ""
            out.append(f"{r.id}\t{r.kind}\t{r.pattern}\t{action_text(r)}\t{scope}\t"
                       f"hits={r.hits}{note}")
        return out

    def add(self, kind: str, pattern: str, action: str = "reject", *, user: str | None = None,
            note: str = "") -> FilterRule:
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise RuleError(f"unknown kind {kind!r}: use ip, sender, keyword or header")
        act, points = parse_action(action)
        pattern = normalise_pattern(kind, pattern)
        owner = ""
        if user:
            try:
                owner = parse_address(user).key
            except AddressError as e:
                raise RuleError(f"--user {user!r}: {e}") from None
            if self.store.get_user(owner) is None:
                raise RuleError(f"no user {owner} on this server")
        return self.store.add_filter_rule(kind, pattern, act, points=points, user=owner,
                                          note=note.strip())

    def own_senders(self, user: str) -> list[FilterRule]:
        """The user's own block and allow lists: their sender rules."""
        return [r for r in self.list(user) if r.kind == "sender"]

    def add_own(self, user: str, pattern: str, action: str) -> FilterRule:
        """A sender (address, @domain or a bare domain) on the user's own
        list: junk or reject (blocked) or allow, for mail to them only."""
        if action not in OWN_ACTIONS:
            raise RuleError(f"unknown action {action!r}: use " + ", ".join(OWN_ACTIONS))
        p = pattern.strip()
        if p and "@" not in p:
            p = "@" + p        # a bare domain: everyone at it
        key = normalise_pattern("sender", p)
        added = self.add("sender", key, action, user=user)
        for r in self.own_senders(user):     # one entry per sender: the new one replaces
            if r.pattern == key and r.id != added.id:
                self.store.delete_filter_rule(r.id)
        return added

    def delete(self, rule_id: int, user: str | None = None) -> bool:
        """Delete a rule (user given: only if it is that user's own)."""
        if user is not None and not any(r.id == rule_id for r in self.list(user)):
            return False
        return self.store.delete_filter_rule(rule_id)

    def test(self, content: bytes, *, ip: str = "127.0.0.1", sender: str | None = None,
             recipients: list[str] | None = None, helo: str = "") -> TestReport:
        """The message as if it came in now on port 25: same Pipeline, same
        checks, nothing counted (rule hits, fingerprints) and nothing stored."""
        return asyncio.run(self.test_async(content, ip=ip, sender=sender,
                                           recipients=recipients, helo=helo))

    async def test_async(self, content: bytes, *, ip: str = "127.0.0.1",
                         sender: str | None = None, recipients: list[str] | None = None,
                         helo: str = "") -> TestReport:
        content = content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        text = extract(content)
        if sender is None:
            found = [a for _, a in getaddresses(text.header("from")) if a]
            sender = found[0] if found else ""
        if not recipients:
            recipients = [a for _, a in getaddresses(text.header("to") + text.header("cc"))
                          if a] or [f"postmaster@{self.settings.server.domain}"]
        pipeline = Pipeline(self.store, lambda: self.settings)
        pipeline.context.rules.counting = False
        client = Client(ip, "smtp", helo=helo or "test.invalid", sid="")
        report = TestReport(client, sender)
        try:
            env = Envelope(declared_size=len(content), sender_raw=sender)
            v, addr = await pipeline.check_sender(client, sender, smtputf8=True)
            report.steps.append(f"MAIL FROM:<{sender}>: {v}")
            if not v.ok:
                report.verdict = v
                return report
            env.sender, env.smtputf8 = addr, True
            for raw in recipients:
                rv, rcpt = await pipeline.check_recipient(client, env, raw)
                report.steps.append(f"RCPT TO:<{raw}>: {rv}")
                if rcpt is not None:
                    env.recipients.append(rcpt)
            if not env.recipients:
                report.verdict = Verdict(554, "5.5.1", "no recipient was accepted")
                return report
            d = await pipeline.check_message(client, env, content, len(content), dry_run=True)
            report.decision, report.verdict = d, d.verdict
            report.folders = {r.address.key: d.folders.get(r.address.key, "INBOX")
                              for r in env.recipients if r.users}
            return report
        finally:
            pipeline.close()
