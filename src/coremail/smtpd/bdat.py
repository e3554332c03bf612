"""SMTP CHUNKING (RFC 3030): the BDAT command, as a part of the engine.

A chunk is read by its announced size, not by an end marker, and must be read
past even when it is refused, or its bytes would be taken as commands. Kept
apart from engine.py as auth.py is, so the engine stays one state machine.
Past SPOOL_ABOVE the message so far goes to a spool file; each SPOOL_ABOVE
bytes of a chunk (and a smaller chunk whole) must come within the data time-out.
"""
from __future__ import annotations

import asyncio
from typing import Any

from ..pipeline.verdict import Verdict
from .parser import SyntaxReply, parse_bdat_arg, to_crlf

SPOOL_ABOVE = 1 << 20   # as the engine's: a bigger message goes to a spool file
SPOOL_FAILED = Verdict(452, "4.3.1", "the server has no room for this message right now; "
                                     "please try again later")


class BdatCommand:
    """Mixed into SmtpProtocol; uses its buffer, _wait, reply and resets."""

    session: Any
    handler: Any
    cfg: Any
    reply: Any
    _buf: bytearray
    _eof: bool
    _wait: Any
    _in_data: bool
    _bdat: bytearray | None
    _bdat_refused: Verdict | None
    _bdat_total: int
    _bdat_spool: Any = None       # the spool file once the message is past SPOOL_ABOVE
    _bdat_spooled: int = 0
    _message_refusal: Any
    _reset: Any
    _reset_after_message: Any

    async def _read_exact(self, n: int, keep: bytearray | None, limit: int) -> bool:
        """BDAT: move n bytes into `keep` (or drop them); False at EOF."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.data_timeout
        got = 0
        while n:
            if not self._buf:
                if self._eof:
                    return False
                await self._wait(deadline)
                continue
            take = min(n, len(self._buf))
            if keep is not None and self._bdat_spooled + len(keep) + take <= limit:
                keep += memoryview(self._buf)[:take]
                if len(keep) > SPOOL_ABOVE and keep is self._bdat:
                    self._spill(keep)
            del self._buf[:take]
            n -= take
            got += take
            if got >= SPOOL_ABOVE:   # progress: the next piece gets its own time-out
                got = 0
                deadline = loop.time() + self.cfg.data_timeout
        return True

    def _spill(self, keep: bytearray) -> None:
        """Move the message so far to the spool file (made on first use)."""
        spool = self.cfg.spool
        if spool is None:
            return
        try:
            if self._bdat_spool is None:
                self._bdat_spool = spool()
            self._bdat_spool.write(keep)
        except OSError:
            self._bdat_refused = SPOOL_FAILED   # read on; the last chunk is refused
            return
        self._bdat_spooled += len(keep)
        keep.clear()

    def _drop_bdat(self) -> None:
        self._bdat = None
        if self._bdat_spool is not None:
            self._bdat_spool.close()
            self._bdat_spool = None
        self._bdat_spooled = 0

    def _bdat_content(self) -> bytes:
        """The whole message of a BDAT transaction, with CRLF line ends."""
        raw = bytes(self._bdat)
        if self._bdat_spool is not None:
            f = self._bdat_spool
            f.write(raw)
            f.seek(0)
            raw = f.read()
        self._drop_bdat()
        return to_crlf(raw)

    async def cmd_bdat(self, arg: str) -> bool:
        s = self.session
        if not self.cfg.chunking:
            self.reply(Verdict(502, "5.5.1", "BDAT is not offered here"))
            return True
        try:
            size, last = parse_bdat_arg(arg)
        except SyntaxReply:
            # RFC 3030 2: the chunk follows regardless; if its size is
            # readable, read past it so its bytes are not taken as commands.
            head = arg.split()[:1]
            if head and head[0].isdigit() and len(head[0]) <= 15:
                if not await self._read_exact(int(head[0]), None, 0):
                    return False
            raise
        limit = self.handler.data_limit(s)
        refusal = self._message_refusal()
        if refusal is not None:
            # The chunk is on its way regardless: read past it, then refuse.
            if not await self._read_exact(size, None, 0):
                return False
            self.reply(refusal)
            return True
        if self._bdat is None:
            self._bdat = bytearray()
            self._bdat_total = 0
        self._in_data = True
        try:
            self._bdat_total += size
            keep = None if (self._bdat_refused or self._bdat_total > limit) else self._bdat
            if not await self._read_exact(size, keep, limit):
                return False
        finally:
            self._in_data = False
        if self._bdat_refused is None and self._bdat_total > limit:
            self._bdat_refused = self.handler.too_big(s, self._bdat_total)
        if not last:
            if self._bdat_refused is not None:
                self.reply(self._bdat_refused)
            else:
                self.reply(Verdict(250, "2.0.0", f"{size} bytes received"))
            return True
        if self._bdat_refused is not None:
            self.reply(self._bdat_refused)
            self._reset()
            return True
        try:
            content = self._bdat_content()
        except OSError:
            self._reset()
            self.reply(SPOOL_FAILED)
            return True
        v = await self.handler.on_message(s, content, len(content))
        self.reply(v)
        self._reset_after_message()
        return True
