"""QRESYNC's record of expunged UIDs (Store.vanished_since, trim_vanished)
on every backend: each way a message leaves a folder is recorded with the
folder's modseq, a trim leaves a floor that makes older questions answer
None (the caller falls back to a full comparison), and the record goes with
its folder."""
from __future__ import annotations

import time

from .test_store import add_user, put


def _folder(store, d):
    return store.get_folder_by_id(d.folder_id)


def test_expunge_move_and_delete_are_recorded_with_their_modseq(store):
    u = add_user(store)
    ds = [put(store, u, b"Subject: %d\r\n\r\nx\r\n" % i) for i in range(8)]
    fid = ds[0].folder_id
    start = _folder(store, ds[0]).highestmodseq
    assert store.vanished_since(fid, start) == []
    store.expunge(fid, [1, 2, 3])
    after_expunge = _folder(store, ds[0]).highestmodseq
    archive = store.create_folder(u.id, "Archive")
    store.copy_messages(fid, [5, 6], archive.id, move=True)
    after_move = _folder(store, ds[0]).highestmodseq
    store.copy_messages(fid, [7], archive.id)            # a copy takes nothing away
    store.delete_messages(u.id, [ds[7].message_id])      # POP3 DELE, the web
    assert store.vanished_since(fid, start) == [(1, 3), (5, 6), (8, 8)]
    assert store.vanished_since(fid, after_expunge) == [(5, 6), (8, 8)]
    assert store.vanished_since(fid, after_move) == [(8, 8)]
    assert store.vanished_since(fid, _folder(store, ds[0]).highestmodseq) == []
    assert store.vanished_since(archive.id, 0) == []


def test_a_trim_leaves_a_floor_below_which_the_answer_is_none(store):
    u = add_user(store)
    ds = [put(store, u) for _ in range(6)]
    fid = ds[0].folder_id
    m0 = _folder(store, ds[0]).highestmodseq
    store.expunge(fid, [1])
    m1 = _folder(store, ds[0]).highestmodseq
    store.expunge(fid, [2])
    assert store.trim_vanished(time.time() - 3600) == 0            # nothing that old
    assert store.trim_vanished(time.time() + 1) == 2               # every record due
    assert store.vanished_since(fid, m0) is None
    assert store.vanished_since(fid, m1) is None
    top = _folder(store, ds[0]).highestmodseq
    assert store.vanished_since(fid, top) == []                    # from the floor on: complete
    store.expunge(fid, [4])
    assert store.vanished_since(fid, top) == [(4, 4)]


def test_only_the_newest_removals_per_folder_are_kept(store):
    u = add_user(store)
    ds = [put(store, u) for _ in range(6)]
    fid = ds[0].folder_id
    marks = []
    for uid in (1, 2, 3, 4):
        marks.append(_folder(store, ds[0]).highestmodseq)
        store.expunge(fid, [uid])
    assert store.trim_vanished(time.time() - 3600, keep=3) == 2
    assert store.vanished_since(fid, marks[1]) is None
    assert store.vanished_since(fid, marks[2]) == [(3, 4)]
    assert store.vanished_since(fid, marks[3]) == [(4, 4)]


def test_the_record_goes_with_its_folder(store):
    u = add_user(store)
    f = store.create_folder(u.id, "Old")
    d = put(store, u, folder="Old")
    store.expunge(f.id, [d.uid])
    store.delete_folder(u.id, "Old")
    assert store.vanished_since(f.id, 0) == []
    assert store.trim_vanished(time.time() + 1) == 0
