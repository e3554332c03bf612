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


async def test_the_deliveragent_expires_the_bayes_model(harness):
    """Old rare clues go and a model over antispam.bayes_max_tokens shrinks,
    as soon as the deliveragent starts (then hourly)."""
    from coremail.store.interfaces import GLOBAL_MODEL, BayesItem

    store = harness.store
    old = time.time() - 100 * 86400
    store.bayes_train(GLOBAL_MODEL, [BayesItem("a" * 32, True, [1, 2, 3]),
                                     BayesItem("b" * 32, True, [3])], now=old)
    store.bayes_train(GLOBAL_MODEL, [BayesItem(f"{i:032x}", False, [10 + i]) for i in range(5)])
    harness.set("antispam.bayes_expire_after", "30d")
    harness.set("antispam.bayes_expire_count", "1")
    harness.set("antispam.bayes_max_tokens", "4")
    svc = agent_service.DeliverAgentService(harness.ctx)
    await svc.start({})
    try:
        await harness.until(lambda: harness.events("deliveragent.bayes_expire"), 5, "the expiry")
        # 1 and 2: old and rare; then the 6 left are 2 over the bound of 4: 3
        # (the oldest) and one of the new
        assert str(harness.events("deliveragent.bayes_expire")[0]["removed"]) == "4"
        assert store.bayes_size(GLOBAL_MODEL) == 4
        assert store.bayes_lookup([GLOBAL_MODEL], [1, 2, 3])[1] == {}
    finally:
        await svc.stop(5)
