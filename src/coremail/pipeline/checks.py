"""What a message check is: an async callable over the message (parsed
once, in `Message`) that may wait on the network within its time-out and
returns a `CheckResult`: a verdict, named scores with words, headers to add
and a folder per recipient. Checks never reply to anyone; `decide` sums them.

A check's `kind` says what an allow rule may skip: "spam" checks are skipped
for allow-listed mail and when `antispam.enabled` is off; "list" checks (the
allow/block lists) run first, before the others; "virus" and "policy" checks
(the virus scan, the hop count) always run. The list of checks and their
order is `pipeline.registry.default_checks`.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from typing import Any, Callable, Protocol

from ..config import Settings
from ..mail.headers import MAX_HOPS, hops
from ..mail.text import MessageText, extract
from .envelope import Client, Envelope
from .verdict import Verdict


@dataclass(frozen=True, slots=True)
class Score:
    """One named finding: points towards spam (negative: towards ham) and the
    plain words an administrator reads in the trace."""

    name: str
    points: float
    words: str


@dataclass
class CheckResult:
    verdict: Verdict | None = None                          # refuse (or defer) the message
    scores: list[Score] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)  # to add on top
    folders: dict[str, str] = field(default_factory=dict)   # recipient address -> folder
    allow: bool = False                                     # a "list" check: skip the spam checks
    allowed: set[str] = field(default_factory=set)          # recipients whose own rule allows it
    points_for: dict[str, float] = field(default_factory=dict)  # recipient's own rules' points
    # Header fields to take out of the stored copy, each exactly as it is in
    # the message (name to last line ending): forged Authentication-Results.
    drop: list[bytes] = field(default_factory=list)
    note: str = ""             # why nothing was found, for `coremail filter test` (e.g. untrained)


class Message:
    """The message as the checks see it: the raw bytes, the header section,
    and the header fields parsed once on first use. `run` puts blocking work
    (a big parse, a file scan) on the pipeline's threads. `text()` is the
    decoded text (mail.text.extract), made once on a thread and shared by
    every check that asks. `dry_run` (coremail filter test): checks must
    change nothing (no counters, no hit counts)."""

    def __init__(self, client: Client, env: Envelope, content: bytes, header: bytes,
                 settings: Settings, executor: Executor | None = None, *,
                 dry_run: bool = False):
        self.client = client
        self.env = env
        self.content = content
        self.header = header
        self.size = len(content)
        self.settings = settings
        self._executor = executor
        self._fields: list[tuple[str, str]] | None = None
        self._text: asyncio.Future[MessageText] | None = None
        self.dry_run = dry_run

    async def text(self) -> MessageText:
        """The decoded headers and text parts, parsed on first use only."""
        if self._text is None:
            self._text = asyncio.ensure_future(self.run(extract, self.content))
        # shielded: a check timed out while waiting must not cancel the others' parse
        return await asyncio.shield(self._text)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def fields(self) -> list[tuple[str, str]]:
        """(lower-case name, unfolded raw value) for each header field, in order."""
        if self._fields is None:
            out: list[tuple[str, str]] = []
            for line in self.header.decode("utf-8", "surrogateescape").split("\n"):
                line = line.rstrip("\r")
                if line[:1] in (" ", "\t") and out:
                    out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
                elif ":" in line:
                    name, _, value = line.partition(":")
                    out.append((name.strip().lower(), value.strip()))
            self._fields = out
        return self._fields

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.fields if n == name), None)

    def decoded(self, name: str) -> str:
        """A header field with RFC 2047 words decoded ("" when absent)."""
        raw = self.get(name)
        if raw is None:
            return ""
        try:
            return str(make_header(decode_header(raw)))
        except (ValueError, LookupError, UnicodeError):
            return raw


class LaterFlush:
    """Writes a check's batched counts once, `delay` seconds after the first
    count since the last write, on the pipeline's threads: a count per
    message costs no store write on the SMTP path."""

    def __init__(self, write: Callable[[], None], delay: float, executor: Executor | None):
        self.write = write
        self.delay = delay
        self.executor = executor
        self._timer: asyncio.TimerHandle | None = None

    def schedule(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timer = None
            loop.run_in_executor(self.executor, self.write)

        self._timer = loop.call_later(self.delay, fire)


class MessageCheck(Protocol):
    name: str
    kind: str     # "list", "spam", "virus" or "policy" (see the module docstring)

    async def __call__(self, msg: Message) -> CheckResult | None: ...


class HopCount:
    """A message that has passed through too many servers is in a loop."""

    name = "hops"
    kind = "policy"

    async def __call__(self, msg: Message) -> CheckResult | None:
        n = hops(msg.header)
        if n > MAX_HOPS:
            return CheckResult(Verdict(554, "5.4.6", f"the message has passed through {n} "
                                       "servers; there is probably a mail loop"))
        return None
