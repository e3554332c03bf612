"""The one way in: a message's local copies and its queue entry commit
together or not at all, each copy gets its summary, concurrent submitters
share a batch, and a copy refused at commit time gets the sender a DSN."""
from __future__ import annotations

import asyncio

from coremail.ingest import Job, LocalCopy, new_qid
from coremail.store.interfaces import AlreadyExists, BlobRef

MSG = b"From: a@far.test\r\nSubject: hello\r\n\r\nbody\r\n"


async def test_local_and_remote_in_one_transaction(world):
    amy = world.user("amy@example.test")
    job = Job(qid=new_qid(), sender="a@far.test", parts=[b"Received: x\r\n", MSG],
              local=[LocalCopy(amy)], remote=["bob@far.test"])
    done = await world.ingest.submit(job)
    assert done.accepted and done.queued and len(done.stored) == 1
    [m] = world.messages(amy, meta=True)
    assert m.blob_id == job.qid and m.meta["envelope"]["subject"] == "hello"
    entry = world.store.queue_get(job.qid)
    assert [r.address for r in entry.recipients] == ["bob@far.test"]
    assert world.store.blobs.read(job.qid) == b"Received: x\r\n" + MSG


async def test_a_refused_queue_entry_takes_the_local_copies_with_it(world):
    amy = world.user("amy@example.test")
    taken = world.store.blobs.write(b"old")
    world.store.enqueue(queue_id="TAKEN", blob=taken, sender="", recipients=["x@far.test"])
    job = Job(qid="TAKEN", blob_id=new_qid(), sender="a@far.test", parts=[MSG],
              local=[LocalCopy(amy)], remote=["bob@far.test"])
    done = await world.ingest.submit(job)
    assert not done.accepted and isinstance(done.error, AlreadyExists)
    assert world.messages(amy) == []                      # nothing half-stored
    assert world.store.blobs.read(taken.id) == b"old"     # the other entry's blob untouched
    assert not world.store.blobs.path(job.blob.id).exists()


async def test_concurrent_messages_share_one_batch(world):
    amy = world.user("amy@example.test")
    commits = []
    real = world.store.deliver

    def counting(deliveries, queued=(), **kw):
        commits.append(len(deliveries))
        return real(deliveries, queued, **kw)
    world.store.deliver = counting
    jobs = [Job(qid=new_qid(), sender="", parts=[MSG], local=[LocalCopy(amy)])
            for _ in range(20)]
    done = await asyncio.gather(*(world.ingest.submit(j) for j in jobs))
    assert all(j.accepted for j in done) and sum(commits) == 20
    assert len(commits) <= 3      # batches form while the previous one is on disk
    assert len(world.messages(amy)) == 20


async def test_a_copy_refused_at_commit_is_bounced_to_the_sender(world):
    amy = world.user("amy@example.test")
    full = world.user("full@example.test", quota=10)
    job = Job(qid=new_qid(), sender="a@far.test", parts=[MSG],
              local=[LocalCopy(amy), LocalCopy(full)])
    done = await world.ingest.submit(job)
    assert done.accepted and [c.user.address for c, _ in done.failed] == ["full@example.test"]
    [bounce] = [e for e in world.store.queue_list() if e.kind == "bounce"]
    assert bounce.sender == "" and [r.address for r in bounce.recipients] == ["a@far.test"]
    text = world.store.blobs.read(bounce.blob_id).decode()
    assert "full@example.test" in text and "Status: 5.2.2" in text
    assert "ingest.bounced" in world.logbuf.getvalue()


async def test_nothing_stored_is_an_error_and_no_blob_is_left(world):
    full = world.user("full@example.test", quota=10)
    job = Job(qid=new_qid(), sender="a@far.test", parts=[MSG], local=[LocalCopy(full)])
    done = await world.ingest.submit(job)
    assert not done.accepted and done.error.code == 552
    assert not world.store.blobs.path(job.qid).exists()
    assert world.store.queue_list() == []    # no bounce: the sender is told by the reply


async def test_an_existing_blob_is_not_written_again(world):
    amy = world.user("amy@example.test")
    ref = world.store.blobs.write(MSG)
    job = Job(qid="Q1", sender="", parts=[MSG], blob=BlobRef(ref.id, ref.size),
              local=[LocalCopy(amy, "Junk", frozenset({"$Junk"}))])
    done = world.ingest.commit_now([job])[0]
    assert done.accepted
    [m] = world.messages(amy, "Junk", meta=True)
    assert m.blob_id == ref.id and m.flags == {"$Junk"} and m.meta is not None
