"""Expunge never lies (RFC 2180 4.1): a message expunged by one session stays
readable, with its own bytes, by every session not yet sent its EXPUNGE;
its blob goes only after the last such session has been told (the views
each process publishes, then the store's purge_removed)."""
from __future__ import annotations

import time

import pytest

from .conftest import wait_for

BIG = 400 * 1024   # streamed from the blob, not read inline


def msg(n: int, body: str = "hello") -> bytes:
    return (f"From: sender{n}@example.test\r\nTo: alice@example.test\r\nSubject: number {n}\r\n"
            f"\r\n{body} {n}\r\n").encode()


@pytest.fixture(autouse=True)
def _no_leftovers(imap):
    """Earlier tests' users were deleted on this home: purge what they left."""
    imap.store.purge_removed(grace=0)


def publish(imap) -> None:
    """One round of the service's views task now (else within half a second)."""
    imap.call(imap.service.views.step(time.monotonic()))


def test_a_message_expunged_elsewhere_stays_readable_until_the_session_is_told(imap, alice):
    contents = [msg(1), msg(2), msg(3, "x" * BIG)]
    for data in contents:
        imap.deliver(alice, data)
    blobs = [m.blob_id for m in imap.messages(alice)]
    a, b = imap.client(alice), imap.client(alice)
    a.select("INBOX")
    b.select("INBOX")
    b.store("2:3", "+FLAGS", "(\\Deleted)")
    assert b.expunge()[0] == "OK"
    publish(imap)
    assert imap.store.purge_removed(grace=0) == 0            # a still shows 2 and 3

    typ, data = a.fetch("1:3", "(UID BODY.PEEK[])")
    assert typ == "OK", data
    got = [part[1] for part in data if isinstance(part, tuple)]
    assert got == contents                                   # never empty, never another's
    typ, data = a.fetch("2", "(ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b'"number 2"' in data[0][0] and data[0][1].startswith(b"Subject: number 2")
    assert imap.log_lines("imap.blob_missing") == []

    a.noop()                                                 # told now
    assert a.response("EXPUNGE")[1] == [b"3", b"2"]
    publish(imap)
    assert imap.store.purge_removed(grace=0) == 2
    assert not any(imap.store.blobs.path(x).exists() for x in blobs[1:])
    assert imap.store.blobs.path(blobs[0]).exists()
    a.logout()
    b.logout()


def test_a_session_that_leaves_or_goes_away_releases_its_view(imap, alice):
    imap.deliver(alice, msg(1))
    blob = imap.messages(alice)[0].blob_id
    a, b = imap.client(alice), imap.client(alice)
    a.select("INBOX")
    b.select("INBOX")
    b.store("1", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.logout()
    publish(imap)
    assert imap.store.purge_removed(grace=0) == 0 and imap.store.blobs.path(blob).exists()
    a.shutdown()                                             # gone without a word
    wait_for(lambda: not imap.service.views.current())
    publish(imap)
    assert imap.store.purge_removed(grace=0) == 1


def test_the_service_purges_removed_blobs_itself(imap, alice):
    views = imap.service.views
    views.purge_every, views.grace = 0.1, 0.2
    imap.deliver(alice, msg(1))
    blob = imap.messages(alice)[0].blob_id
    c = imap.client(alice)
    c.select("INBOX")
    c.store("1", "+FLAGS", "(\\Deleted)")
    c.expunge()                                              # its own: told at once
    c.logout()
    assert wait_for(lambda: not imap.store.blobs.path(blob).exists())
    assert wait_for(lambda: imap.log_lines("views.purged"))   # logged just after the deletion
