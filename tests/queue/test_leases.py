"""Queue leases in the SQL store: two agents never hold the same entry, and
a finished attempt gives its entry back."""
from __future__ import annotations

import time

from coremail.store.interfaces import QueueRecipient
from coremail.store.sql.store import SqlStore
from tests.support.testdb import home_database


def test_claims_are_exclusive_until_released_or_expired(tmp_path):
    st = SqlStore.open_home(tmp_path, home_database())
    st.migrate()
    blob = st.blobs.write(b"Subject: x\r\n\r\nhi\r\n")
    st.enqueue(queue_id="Q1", blob=blob, sender="a@x.test", recipients=["b@y.test"])
    now = time.time()
    assert [e.id for e in st.queue_claim("host:1:a", now, now + 60, 10)] == ["Q1"]
    assert st.queue_claim("host:2:b", now, now + 60, 10) == []
    assert st.queue_lease_owners() == ["host:1:a"]
    assert [e.id for e in st.queue_claim("host:2:b", now + 61, now + 120, 10)] == ["Q1"]
    st.queue_update("Q1", recipients=[QueueRecipient("b@y.test", "pending", "4.4.1 x", 1)],
                    next_attempt=now, last_error="4.4.1 x")
    assert st.queue_lease_owners() == []
    st.queue_mark("Q1", [QueueRecipient("b@y.test", "sent", "250 ok", 2)])
    assert st.queue_get("Q1").recipients[0].status == "sent"
    st.close()


def test_group_delete_keeps_a_blob_still_referred_to(tmp_path):
    st = SqlStore.open_home(tmp_path, home_database())
    st.migrate()
    shared = st.blobs.write(b"Subject: shared\r\n\r\nhi\r\n")
    own = st.blobs.write(b"Subject: own\r\n\r\nhi\r\n")
    for qid, blob in (("Q1", shared), ("Q2", shared), ("Q3", own)):
        st.enqueue(queue_id=qid, blob=blob, sender="a@x.test", recipients=["b@y.test"])
    assert st.queue_delete_many(["Q1", "Q3", "Q3", "gone"]) == 2
    assert [e.id for e in st.queue_list()] == ["Q2"]
    assert st.blobs.read(shared.id).startswith(b"Subject: shared")  # Q2 still needs it
    assert not st.blobs.path(own.id).exists()
    assert st.queue_delete_many([]) == 0
    st.close()
