"""The message trace for people: "where is my mail?" answered from the events
every service records (obs.trace, Store.trace_find), one story per message.

`MessageTrace.find` takes a queue id, a Message-ID or an address and returns
the stories newest first, with the messages a story led to (its bounce, a
forwarded copy) as stories of their own. `render` writes them as plain-words
blocks (`coremail trace`); the webadmin's "Message trace" page and the
webmail's "Where is my mail?" page call the same functions (`for_user` keeps
a user to the mail they sent or received).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..obs.trace import TraceEvent
from ..store.interfaces import Store

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


class MessageTrace:
    """Blocking (the store): run it in a thread from an event loop."""

    def __init__(self, store: Store):
        self.store = store

    def find(self, term: str, *, since: float = 0.0, limit: int = LIMIT) -> list[Story]:
        term = term.strip()
        if not term:
            return []
        stories = _group(self.store.trace_find(term, since=since, limit=limit))
        # What a story led to: its bounce report, a forwarded copy.
        for s in list(stories.values()):
            for e in s.events:
                for linked in (e.details.get("bounce_qid"), e.details.get("new_qid")):
                    if linked and linked not in stories:
                        stories.update(_group(self.store.trace_find(linked, limit=1)))
        return sorted(stories.values(), key=lambda s: s.last, reverse=True)

    def for_user(self, address: str, term: str = "", *, since: float = 0.0) -> list[Story]:
        """The stories of mail ``address`` sent or received (and nobody else's),
        by default all of them, else those matching ``term`` too."""
        me = address.lower()
        found = self.find(term or address, since=since)
        return [s for s in found if me in s.addresses]


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
