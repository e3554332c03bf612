"""Several sessions at once doing imaptest's kind of mix on one mailbox
(SELECT, FETCH of whole messages, STORE, EXPUNGE, APPEND, NOOP) for a few
seconds, with the purge of removed blobs running fast: every message a
session fetches, whatever the others expunged meanwhile, is the message that
UID names, byte for byte, and the same for every session; no NO, BAD or BYE."""
from __future__ import annotations

import hashlib
import imaplib
import random
import re
import threading
import time

from .conftest import wait_for

CLIENTS = 4
READERS = 2
SECS = 6.0
_BODY = re.compile(rb"UID (\d+) .*BODY\[\] \{\d+\}$")


def message(tag: str, size: int) -> bytes:
    line = f"{tag} lorem ipsum dolor sit amet\r\n"
    return (f"From: stress@example.test\r\nTo: alice@example.test\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@example.test>\r\n\r\n" + line * (size // len(line) + 1)).encode()


class Mix:
    def __init__(self, imap, who: str, seed: int) -> None:
        self.imap, self.who = imap, who
        self.rnd = random.Random(seed)
        self.expected: dict[int, bytes] = {}     # uid -> what was stored under it
        self.seen: dict[int, dict[str, bytes]] = {}   # uid -> session -> sha1 fetched
        self.errors: list[str] = []
        self.fetched = 0
        self.lock = threading.Lock()

    def check(self, name: str, what: str, typ: str, data) -> None:
        if typ != "OK":
            self.errors.append(f"{name} {what}: {typ} {data!r:.300}")

    def client(self, name: str, until: float) -> None:
        rnd = random.Random(f"{name}")
        try:
            c = self.imap.client(self.who)
            while time.monotonic() < until:
                self.check(name, "SELECT", *c.select("INBOX"))
                for _ in range(rnd.randint(3, 12)):
                    self.step(c, name, rnd)
                    if time.monotonic() >= until:
                        break
            c.logout()
        except (imaplib.IMAP4.error, OSError) as e:   # a BYE or a dropped connection
            self.errors.append(f"{name}: {e!r:.300}")

    def step(self, c, name: str, rnd: random.Random) -> None:
        # readers (r*) only fetch: their view lags up to a second behind the expunges
        op = "fetch" if name[0] == "r" else rnd.choices(
            ("fetch", "store", "expunge", "append", "noop"), (5, 3, 2, 2, 1))[0]
        if op == "fetch":
            with self.lock:
                uids = sorted(self.expected)[-20:]    # the newest: the likeliest to go
            lo = rnd.choice(uids) if uids else 1
            typ, data = c.uid("FETCH", f"{lo}:{lo + rnd.randint(0, 6)}", "(UID FLAGS BODY.PEEK[])")
            self.check(name, "UID FETCH", typ, data)
            for part in data or ():
                if isinstance(part, tuple):
                    self.got(name, part)
        elif op == "store":
            flag = rnd.choice(("\\Deleted", "\\Seen", "\\Flagged", "$Stress"))
            with self.lock:
                uids = sorted(self.expected)
            lo = rnd.choice(uids) if uids else 1
            self.check(name, "UID STORE", *c.uid("STORE", f"{lo}:{lo + rnd.randint(0, 3)}",
                                                 rnd.choice("+-") + "FLAGS", f"({flag})"))
        elif op == "expunge":
            self.check(name, "EXPUNGE", *c.expunge())
        elif op == "append":
            data = message(f"{name}-{rnd.random():.12f}", rnd.randint(200, 300_000))
            typ, resp = c.append("INBOX", None, None, data)
            self.check(name, "APPEND", typ, resp)
            m = re.search(rb"APPENDUID \d+ (\d+)", resp[0] or b"")
            if m:
                with self.lock:
                    self.expected[int(m.group(1))] = data
        else:
            self.check(name, "NOOP", *c.noop())

    def got(self, name: str, part: tuple) -> None:
        m = _BODY.search(part[0])
        if m is None:
            self.errors.append(f"{name}: unexpected FETCH {part[0]!r:.200}")
            return
        with self.lock:
            self.fetched += 1
            self.seen.setdefault(int(m.group(1)), {})[name] = hashlib.sha1(part[1]).digest()

    def wrong(self) -> list[str]:
        """Checked at the end: a reader may fetch a UID before its APPEND's
        tagged OK (with the APPENDUID) reached the appender."""
        out = []
        for uid, got in sorted(self.seen.items()):
            want = self.expected.get(uid)
            for name, digest in got.items():
                if want is None or digest != hashlib.sha1(want).digest():
                    out.append(f"{name}: UID {uid} fetched other octets than stored "
                               f"({'unknown uid' if want is None else len(want)})")
        return out


def test_concurrent_sessions_always_fetch_what_each_uid_names(imap, alice):
    views = imap.service.views
    # removed blobs really go during the run: a purge every 50 ms, of what
    # is half a second old (views are published every 50 ms here)
    views.publish_delay, views.purge_every, views.grace = 0.05, 0.05, 0.5
    mix = Mix(imap, alice, 1)
    for i in range(30):
        data = message(f"seed-{i}", 500 + 997 * i)
        mix.expected[imap.deliver(alice, data)] = data
    until = time.monotonic() + SECS
    names = [f"c{k}" for k in range(CLIENTS)] + [f"r{k}" for k in range(READERS)]
    threads = [threading.Thread(target=mix.client, args=(n, until)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECS + 30)
    assert not any(t.is_alive() for t in threads)
    assert not mix.errors, "\n".join(mix.errors[:20])
    assert not mix.wrong(), "\n".join(mix.wrong()[:20])
    assert mix.fetched > 50
    disagree = {uid: got for uid, got in mix.seen.items() if len(set(got.values())) > 1}
    assert not disagree
    assert sum(len(got) > 1 for got in mix.seen.values()) > 5   # uids read by several sessions
    assert imap.log_lines("imap.blob_missing") == [] and imap.log_lines("imap.session_error") == []
    assert wait_for(lambda: imap.log_lines("views.purged"))       # the purge did run
