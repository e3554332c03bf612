"""The message trace for people: "where is my mail?" answered from the events
every service records (obs.trace, Store.trace_find), one story per message.

`MessageTrace.find` takes a queue id, a Message-ID or an address and returns
the stories newest first, with the messages a story led to (its bounce, a
forwarded copy) as stories of their own; `search` adds sender, recipient,
subject words and a time range (the webadmin's "Message trace" page).
`render` writes them as plain-words blocks (`coremail trace`). `for_user`
keeps a user to the mail they sent or received, and to the part of it that
is theirs (the webmail's "Where is my mail?" page): a recipient does not
see the other recipients (Bcc stays blind), a sender not where another
person's copy was filed or forwarded.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from ..obs.trace import TraceEvent
from ..store.interfaces import Store
from ..store.trace_keys import normalise, word_key, words

LIMIT = 50   # messages per query


@dataclass
class Story:
    """Everything recorded about one message (or one refused transaction)."""

    qid: str
    events: list[TraceEvent] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """False for a transaction refused before it had a queue id."""
        return not self.qid.startswith("s:")

    @property
    def first(self) -> float:
        return self.events[0].at

    @property
    def last(self) -> float:
        return self.events[-1].at

    @property
    def message_id(self) -> str:
        return next((e.message_id for e in self.events if e.message_id), "")

    @property
    def sender(self) -> str:
        ev = next((e for e in self.events if e.kind in ("received", "refused")), self.events[0])
        return ev.sender

    @property
    def subject(self) -> str:
        return next((str(e.details.get("subject") or "") for e in self.events
                     if e.kind == "received"), "")

    @property
    def recipients(self) -> set[str]:
        return {a.lower() for e in self.events for a in e.recipients}

    @property
    def addresses(self) -> set[str]:
        """Every address the story names, lower case (who may see it)."""
        out = {e.sender.lower() for e in self.events if e.sender}
        for e in self.events:
            out.update(a.lower() for a in e.recipients)
        return out


def _group(events: list[TraceEvent]) -> dict[str, Story]:
    stories: dict[str, Story] = {}
    for e in sorted(events, key=lambda e: e.at):
        stories.setdefault(e.qid, Story(e.qid)).events.append(e)
    return stories


@dataclass
class Query:
    """The webadmin's search: any of these, all of them must match."""

    text: str = ""          # a queue id, a Message-ID or an address
    sender: str = ""
    recipient: str = ""
    subject: str = ""       # words of the subject, in any order
    since: float = 0.0
    until: float | None = None

    def keys(self) -> list[str]:
        """What the store can look up, the most telling first."""
        out = [k for k in (self.text, self.sender, self.recipient) if k.strip()]
        return out + [word_key(w) for w in sorted(words(self.subject), key=len, reverse=True)]

    def matches(self, story: Story) -> bool:
        if self.sender and story.sender.lower() != normalise(self.sender):
            return False
        if self.recipient and normalise(self.recipient) not in story.recipients:
            return False
        return set(words(self.subject)) <= set(words(story.subject))


class MessageTrace:
    """Blocking (the store): run it in a thread from an event loop."""

    def __init__(self, store: Store):
        self.store = store

    def _stories(self, term: str, since: float, until: float | None, limit: int
                 ) -> dict[str, Story]:
        return _group(self.store.trace_find(term, since=since, until=until, limit=limit))

    def _linked(self, stories: dict[str, Story]) -> list[Story]:
        """With what each story led to (its bounce report, a forwarded copy), newest first."""
        for s in list(stories.values()):
            for e in s.events:
                for linked in (e.details.get("bounce_qid"), e.details.get("new_qid")):
                    if linked and linked not in stories:
                        stories.update(self._stories(linked, 0.0, None, 1))
        return sorted(stories.values(), key=lambda s: s.last, reverse=True)

    def find(self, term: str, *, since: float = 0.0, until: float | None = None,
             limit: int = LIMIT) -> list[Story]:
        term = term.strip()
        if not term:
            return []
        return self._linked(self._stories(term, since, until, limit))

    def search(self, q: Query, limit: int = LIMIT) -> list[Story]:
        """By the most telling key, narrowed by the rest (from ten times as
        many candidates, so a narrow search over a busy key still fills)."""
        keys = q.keys()
        if not keys:
            return []
        wide = limit * 10 if len(keys) > 1 else limit
        found = self._stories(keys[0], q.since, q.until, wide)
        kept = dict(list((k, s) for k, s in found.items() if q.matches(s))[-limit:])
        return self._linked(kept)

    def for_user(self, address: str, term: str = "", *, since: float = 0.0,
                 until: float | None = None) -> list[Story]:
        """The stories of mail ``address`` sent or received (and nobody else's),
        by default all of them, else those matching ``term`` (a queue id, a
        Message-ID, an address or words of the subject) too; each told
        as that user may see it."""
        me = normalise(address)
        found = self.find(term or address, since=since, until=until)
        if term and not found and "@" not in term:    # not a queue id: words of a subject
            found = self.search(Query(text=me, subject=term, since=since, until=until))
        out = []
        for s in found:
            if me in s.addresses:
                seen = as_seen_by(s, me)
                if seen.events:
                    out.append(seen)
        return out


def as_seen_by(story: Story, me: str) -> Story:
    """The part of a story that is ``me``'s to see (see the module docstring)."""
    sent = story.sender.lower() == me
    out = Story(story.qid)
    for e in story.events:
        rcpts = {a.lower() for a in e.recipients}
        mailbox = str(e.details.get("mailbox") or e.details.get("address") or "").lower()
        if e.kind in ("delivered", "forwarded") and mailbox and mailbox != me:
            if not sent:
                continue
            # Someone else's copy: that it arrived, not where they keep or send it.
            details = {"mailbox": mailbox}
            out.events.append(dataclasses.replace(
                e, kind="delivered", details=details, recipients=(mailbox,),
                text=f"delivered to <{mailbox}>"))
            continue
        if sent or e.kind == "checks":
            out.events.append(e)
        elif e.kind == "received":
            out.events.append(dataclasses.replace(
                e, recipients=(me,), details={k: v for k, v in e.details.items()
                                              if k in ("size", "subject", "tls")},
                text=f"received: from <{e.sender}> to <{me}>"))
        elif me in rcpts or mailbox == me:
            out.events.append(dataclasses.replace(e, recipients=(me,)))
    return out


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"


def render(story: Story) -> str:
    """One block of plain words, the events oldest first."""
    if story.accepted:
        head = f"Message {story.qid}"
    else:
        head = "Refused before it was accepted (no queue id)"
    if story.message_id:
        head += f", Message-ID <{story.message_id}>"
    lines = [head]
    for e in story.events:
        lines.append(f"  {when(e.at)}  {e.text}")
    return "\n".join(lines)


def render_all(stories: list[Story], term: str) -> str:
    if not stories:
        return (f"nothing recorded for {term!r}: no message with that queue id, "
                "Message-ID or address in the trace (try a longer --since, or check the "
                "spelling)")
    return "\n\n".join(render(s) for s in stories)
