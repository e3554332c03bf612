"""The two virus-kind message checks: `ClamdScan` sends the message to
clamd (antivirus.clamd) within antivirus.timeout and applies
antivirus.on_error when clamd cannot answer; `AttachmentScan` is the
built-in protection (dangerous file types, encrypted archives, macros,
archive bombs) refusing or scoring by antivirus.attachments. Both are
`kind = "virus"`: an allow rule never skips them."""
from __future__ import annotations

import asyncio

from ...config import AntivirusSection, Settings
from ..checks import CheckResult, Message, Score
from ..verdict import Verdict
from .attachments import Limits, scan_message
from .clamd import Clamd, ClamdError, ClamdTooBig

STATUS = "X-Virus-Status"
POINTS = {"dangerous": 8.0, "bomb": 8.0, "encrypted": 2.0}
MACRO_POINTS = {"Office macros": 2.5, "Office macros that run on opening": 4.0}
MACRO_WORST = 6.0


def virus_found(name: str) -> Verdict:
    return Verdict(554, "5.7.1", f"the message was refused: virus found: {name}; nothing "
                                 "was delivered")


class ClamdScan:
    name = "clamav"
    kind = "virus"

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int], Clamd] = {}

    def deadline(self, settings: Settings) -> float:
        """How long decide must let this check run: its own time-out and a margin."""
        return float(settings.antivirus.timeout) + 1.0

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients = {}

    def client(self, av: AntivirusSection) -> Clamd:
        key = (av.clamd, av.connections)
        c = self._clients.get(key)
        if c is None:
            self.close()
            self._clients = {key: (c := Clamd(av.clamd, av.connections))}
        return c

    async def __call__(self, msg: Message) -> CheckResult | None:
        av = msg.settings.antivirus
        if not av.clamd:
            return None
        if msg.size > int(av.stream_max):
            return self._unchecked(f"larger than clamd's limit of {av.stream_max}")
        timeout = float(av.timeout)
        try:
            async with asyncio.timeout(timeout):
                virus = await self.client(av).scan(msg.content)
        except TimeoutError:
            return self._failed(av, f"clamd did not answer within {timeout:g} s")
        except ClamdTooBig:
            return self._unchecked("larger than clamd's StreamMaxLength")
        except ClamdError as e:
            return self._failed(av, str(e))
        if virus is not None:
            return CheckResult(virus_found(virus), [Score("VIRUS_FOUND", 0.0,
                                                          f"clamd found {virus}")],
                               [(STATUS, f"Infected ({virus})")])
        return CheckResult(headers=[(STATUS, "Clean")])

    @staticmethod
    def _unchecked(reason: str) -> CheckResult:
        return CheckResult(scores=[Score("VIRUS_UNCHECKED", 0.0, f"not scanned: {reason}")],
                           headers=[(STATUS, f"Unchecked ({reason})")])

    def _failed(self, av: AntivirusSection, reason: str) -> CheckResult:
        if av.on_error == "accept":
            return self._unchecked(reason)
        score = [Score("VIRUS_SCANNER_FAILED", 0.0, reason)]
        if av.on_error == "reject":
            return CheckResult(Verdict(554, "5.7.0", f"the message could not be scanned for "
                                       f"viruses ({reason}) and this server refuses unscanned "
                                       "mail"), score)
        return CheckResult(Verdict(451, "4.7.0", f"the virus scanner is not available right "
                                   f"now ({reason}); please try again later"), score)


class AttachmentScan:
    name = "attachments"
    kind = "virus"

    async def __call__(self, msg: Message) -> CheckResult | None:
        av = msg.settings.antivirus
        if av.attachments == "off" or msg.size <= len(msg.header) + 2:
            return None
        limits = Limits(av.max_depth, av.max_ratio, int(av.max_expanded))
        found = await msg.run(scan_message, msg.content, limits)
        if not found:
            return None
        scores: list[Score] = []
        refusal: Verdict | None = None
        for f in found:
            where = f"{f.where}: " if f.where else ""
            if f.kind == "macro":
                pts = MACRO_POINTS.get(f.what, MACRO_WORST)
                scores.append(Score("VIRUS_OFFICE_MACRO", pts, f"{where}{f.what}"))
                continue
            name = {"dangerous": "VIRUS_DANGEROUS_FILE", "bomb": "VIRUS_ARCHIVE_BOMB",
                    "encrypted": "VIRUS_ENCRYPTED_ARCHIVE"}[f.kind]
            scores.append(Score(name, POINTS[f.kind], f"{where}{f.what}"))
            if f.kind in ("dangerous", "bomb") and av.attachments == "reject" and refusal is None:
                refusal = Verdict(554, "5.7.1", self._words(f))
        return CheckResult(refusal, _unique(scores))

    @staticmethod
    def _words(f) -> str:
        if f.kind == "bomb":
            return f"the message was refused: {f.what}"
        return (f"the message was refused: the attachment {f.where} is {f.what}, a "
                "dangerous type of file that this server does not accept; share it another way")


def _unique(scores: list[Score]) -> list[Score]:
    """One score per name (the highest), its words naming every file."""
    best: dict[str, Score] = {}
    for s in scores:
        old = best.get(s.name)
        if old is None:
            best[s.name] = s
        else:
            best[s.name] = Score(s.name, max(old.points, s.points), f"{old.words}; {s.words}")
    return list(best.values())
