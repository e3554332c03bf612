"""The deliveragent purges removed messages' blobs now and then (where no
IMAP or POP3 process runs to do it), never one a live view still holds."""
from __future__ import annotations

import time

from coremail.queue import service as agent_service
from coremail.store.interfaces import Delivery


async def test_the_deliveragent_purges_removed_blobs(harness, monkeypatch):
    monkeypatch.setattr(agent_service, "PURGE_EVERY", 0.05)
    store = harness.store
    user = store.get_user("sender@example.test")
    kept, gone = store.blobs.write(b"held by a view"), store.blobs.write(b"no one shows it")
    store.create_folder(user.id, "Held")
    res = store.deliver([Delivery(user.id, kept, folder="Held"), Delivery(user.id, gone)])
    held = store.get_folder(user.id, "Held")
    store.publish_views("elsewhere:1:a", {held.id: held.highestmodseq}, until=time.time() + 60)
    for r in res:
        store.expunge(r.folder_id, [r.uid])
    monkeypatch.setattr(agent_service, "GRACE", 0.0)
    svc = agent_service.DeliverAgentService(harness.ctx)
    await svc.start({})
    try:
        await harness.until(lambda: not store.blobs.path(gone.id).exists(), 5, "the purge")
        assert store.blobs.path(kept.id).exists()
        assert harness.events("deliveragent.purged")
    finally:
        await svc.stop(5)
