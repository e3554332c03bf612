"""DNS for the synchronous libraries (pyspf, dkimpy) running on the pipeline's
threads: each question is put on the event loop's own async resolver
(delivery.nameservers, its cache and time-outs) and the thread waits for the
answer, never the loop. One deadline bounds every look-up of a message."""
from __future__ import annotations

import asyncio
import concurrent.futures
import time

from ...dns import Resolver
from ...dns.resolver import Answer, Status


class ThreadDns:
    def __init__(self, resolver: Resolver, loop: asyncio.AbstractEventLoop, budget: float):
        self.resolver = resolver
        self.loop = loop
        self.deadline = time.monotonic() + budget
        self.failed: set[str] = set()     # names that got no usable answer (temperror)

    def lookup(self, name: str, rdtype: str) -> Answer:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.failed.add(name.lower())
            return Answer(name, rdtype, Status.TEMPFAIL, reason="out of time for DNS")
        fut = asyncio.run_coroutine_threadsafe(self.resolver.lookup(name, rdtype), self.loop)
        try:
            answer = fut.result(timeout=left)
        except (concurrent.futures.TimeoutError, Exception) as e:  # noqa: BLE001
            fut.cancel()
            self.failed.add(name.lower())
            return Answer(name, rdtype, Status.TEMPFAIL, reason=str(e) or "DNS time-out")
        if answer.temporary:
            self.failed.add(name.lower())
        return answer

    def txt(self, name: str) -> list[str]:
        return list(self.lookup(name, "TXT").records)

    def dkim_txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's dnsfunc: the key record's text, or None."""
        records = self.txt(name.decode("ascii", "replace").rstrip("."))
        return records[0].encode("utf-8") if records else None
