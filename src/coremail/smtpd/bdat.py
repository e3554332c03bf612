"""SMTP CHUNKING (RFC 3030): the BDAT command, as a part of the engine.

A chunk is read by its announced size, not by an end marker, and must be read
past even when it is refused, or its bytes would be taken as commands. Kept
apart from engine.py as auth.py is, so the engine stays one state machine.
"""
from __future__ import annotations

from typing import Any

from ..pipeline.verdict import Verdict
from .parser import SyntaxReply, parse_bdat_arg, to_crlf


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
    _message_refusal: Any
    _reset: Any
    _reset_after_message: Any

    async def _read_exact(self, n: int, keep: bytearray | None, limit: int) -> bool:
        """BDAT: move n bytes into `keep` (or drop them); False at EOF."""
        while n:
            if not self._buf:
                if self._eof:
                    return False
                await self._wait(self.cfg.data_timeout)
                continue
            take = min(n, len(self._buf))
            if keep is not None and len(keep) + take <= limit:
                keep += memoryview(self._buf)[:take]
            del self._buf[:take]
            n -= take
        return True

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
        content = to_crlf(bytes(self._bdat))
        self._bdat = None
        v = await self.handler.on_message(s, content, len(content))
        self.reply(v)
        self._reset_after_message()
        return True
