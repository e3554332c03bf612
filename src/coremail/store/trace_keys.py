"""What a trace event can be found by (both stores use this): its queue id,
its Message-ID and every address on it, lower-cased, angle brackets off;
and the words of a received message's subject, as "w:" + word (a word is a
run of letters or digits; Chinese and Japanese, written without spaces,
count each character as one), so a subject is found by any of its words."""
from __future__ import annotations

import re
from typing import Iterable

from ..obs.trace import TraceEvent

MAX_KEY = 320
MAX_WORDS = 16     # subject words indexed per message
WORD = "w:"
_WORD = re.compile(r"\w+")
_IDEOGRAPHS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def normalise(term: str) -> str:
    """A search term or key as stored: "<ID@host>" and "ID@host" are one."""
    t = term.strip()
    if t.startswith("<") and t.endswith(">"):
        t = t[1:-1]
    return t.strip().lower()[:MAX_KEY]


def words(text: str) -> list[str]:
    """The words of a subject (or of a search for one), lower case, each once."""
    out: list[str] = []
    for w in _WORD.findall(text.lower()):
        for p in _IDEOGRAPHS.findall(w) + _IDEOGRAPHS.sub(" ", w).split():
            if (len(p) > 1 or _IDEOGRAPHS.match(p)) and p not in out:
                out.append(p[:64])
    return out


def word_key(word: str) -> str:
    return WORD + word


def event_keys(e: TraceEvent) -> Iterable[str]:
    seen: set[str] = set()
    for raw in (e.qid, e.message_id, e.sender, *e.recipients):
        k = normalise(raw) if raw else ""
        if k and k not in seen:
            seen.add(k)
            yield k
    if e.kind == "received" and e.details.get("subject"):
        for w in words(str(e.details["subject"]))[:MAX_WORDS]:
            yield word_key(w)
