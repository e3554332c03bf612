"""Trainings from what users do, on the memory store: a move into Junk is
spam for that user, out of Junk ham (undoing), into Trash nothing; the
move returns before anything is trained; the webmail's "Spam"/"Not spam"
(Learner.mark) only ever trains a user's own messages."""
from __future__ import annotations

from coremail.services.mailboxes import Mailboxes
from coremail.services.spamlearn import Learner, direction
from coremail.store.interfaces import Delivery, Folder
from coremail.store.memory import MemoryStore
from tests.support.mailgen import message


def _folder(name: str, use: str | None = None) -> Folder:
    return Folder(1, 1, name, 1, 1, 1, use, True)


def test_direction():
    inbox, junk, trash = _folder("INBOX"), _folder("Junk", "\\Junk"), _folder("Trash", "\\Trash")
    assert direction(inbox, junk) is True and direction(_folder("Work"), _folder("junk")) is True
    assert direction(junk, inbox) is False and direction(junk, _folder("Work")) is False
    assert direction(junk, trash) is None and direction(inbox, trash) is None
    assert direction(junk, junk) is None


def _setup():
    store = MemoryStore()
    store.add_domain("example.test")
    amy = store.add_user("amy@example.test", password_hash="x", quota=0)
    bob = store.add_user("bob@example.test", password_hash="x", quota=0)
    for u in (amy, bob):
        for name, _ in (("Junk", 0), ("Trash", 0)):
            if store.get_folder(u.id, name) is None:
                store.create_folder(u.id, name)
    return store, amy, bob


def _deliver(store, user, n: int) -> list[int]:
    refs = [store.blobs.write(message("news", i)) for i in range(n)]
    got = store.deliver([Delivery(user.id, r) for r in refs])
    return [d.uid for d in got]


def test_moves_train_in_the_background():
    store, amy, bob = _setup()
    learner = Learner(store)
    boxes = Mailboxes(store, learner=learner)
    uids = _deliver(store, amy, 4)
    inbox = store.get_folder(amy.id, "INBOX")
    boxes.move(amy.id, inbox.id, uids, "Junk")
    assert learner.wait_idle(10)
    assert store.bayes_totals([amy.id]) == {amy.id: (4, 0)}
    junk = store.get_folder(amy.id, "Junk")
    back = store.message_uids(junk.id)
    boxes.move(amy.id, junk.id, back[:1], "INBOX")
    boxes.move(amy.id, junk.id, back[1:2], "Trash")
    boxes.move(amy.id, junk.id, back[2:3], "INBOX", copy=True)
    assert learner.wait_idle(10)
    assert store.bayes_totals([amy.id]) == {amy.id: (2, 2)}
    assert store.bayes_totals([bob.id]) == {}


def test_mark_trains_only_the_users_own_messages():
    store, amy, bob = _setup()
    learner = Learner(store)
    _deliver(store, amy, 2)
    ids = [m.id for m in store.list_messages(store.get_folder(amy.id, "INBOX").id)]
    learner.mark(bob.id, ids, True)          # not Bob's: nothing
    learner.mark(amy.id, ids, True)
    assert learner.wait_idle(10)
    assert store.bayes_totals([amy.id, bob.id]) == {amy.id: (2, 0)}
    learner.mark(amy.id, ids[:1], False)      # "Not spam"
    assert learner.wait_idle(10)
    assert store.bayes_totals([amy.id]) == {amy.id: (1, 1)}
