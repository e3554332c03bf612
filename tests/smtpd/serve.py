"""`python -m tests.smtpd.serve HOME PORT`: the smtp service alone in a
process, for tests that kill it (-9) at awkward moments."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from coremail.app import build_context
from coremail.proto.listen import bind_socket
from coremail.smtpd.service import create


async def main(home: Path, port: int) -> None:
    ctx = build_context(home, "smtp")
    service = create(ctx)
    await service.start({"smtp": bind_socket("127.0.0.1", port, "smtp")})
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
