"""Mailbox use-cases shared by IMAP and the webmail."""
from __future__ import annotations

import pytest

from coremail.services.mailboxes import Mailboxes, MailboxError, NewMessage


@pytest.fixture
def boxes(world):
    return Mailboxes(world.store, world.ingest, lambda: 1000)


def names(world, user):
    return sorted(f.name for f in world.store.list_folders(user.id))


async def test_create_with_parents_rename_and_delete(world, boxes):
    amy = world.user("amy@example.test")
    boxes.create(amy.id, "Work/2026/Q1/")
    assert {"Work", "Work/2026", "Work/2026/Q1"} <= set(names(world, amy))
    with pytest.raises(MailboxError) as e:
        boxes.create(amy.id, "Work")
    assert e.value.reason == "ALREADYEXISTS"
    with pytest.raises(MailboxError) as e:
        boxes.rename(amy.id, "Work", "Work/inside")
    assert e.value.reason == "CANNOT"
    boxes.rename(amy.id, "Work/2026", "Archive/2026")
    assert {"Archive", "Archive/2026", "Archive/2026/Q1"} <= set(names(world, amy))
    for bad in ("", "a//b", "/x", "a*b"):
        with pytest.raises(MailboxError):
            boxes.create(amy.id, bad)
    with pytest.raises(MailboxError) as e:
        boxes.delete(amy.id, "inbox")
    assert e.value.reason == "CANNOT"


async def test_append_all_or_none_and_renaming_inbox(world, boxes):
    amy = world.user("amy@example.test", quota=120)
    inbox = world.folder(amy)
    uids = await boxes.append(amy, inbox, [NewMessage(b"Subject: a\r\n\r\n" + b"x" * 40),
                                           NewMessage(b"Subject: b\r\n\r\n", frozenset({"\\Seen"}))])
    assert uids == [1, 2] and world.messages(amy, meta=True)[0].meta is not None
    with pytest.raises(MailboxError) as e:   # the second would pass the quota: neither stays
        await boxes.append(amy, inbox, [NewMessage(b"y" * 30), NewMessage(b"z" * 60)])
    assert e.value.reason == "OVERQUOTA" and len(world.messages(amy)) == 2
    with pytest.raises(MailboxError) as e:
        await boxes.append(amy, inbox, [NewMessage(b"w" * 2000)])
    assert e.value.reason == "TOOBIG"
    boxes.rename(amy.id, "INBOX", "Old")
    assert len(world.messages(amy, "Old")) == 2 and world.messages(amy) == []
    dest, pairs = boxes.move(amy.id, world.folder(amy, "Old").id, [1], "Trash")
    assert dest.name == "Trash" and len(pairs) == 1
    assert boxes.empty(dest.id) == 1 and world.messages(amy, "Trash") == []
