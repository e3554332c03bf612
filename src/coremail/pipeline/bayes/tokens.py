"""The clues a message is judged by: a set of token strings from the decoded
subject and body text, selected header fields, the hosts of its links and a
few structural marks (part types, HTML tags, charsets).

Chinese, Japanese and Korean text has no spaces: each run of CJK characters
gives its overlapping character bigrams (a lone character stays itself).
Bigrams need no dictionary, never go stale, and are what search engines'
CJK analysers index; a segmenter would add a large dependency for little
gain in a bag-of-clues classifier. Our own X-Spam-* fields are never read:
a filter that learnt its own verdicts would only agree with itself.

Tokens are hashed to signed 64-bit integers for storage (`token_hash`): a
million of them fit in a few tens of MB, and a collision costs nothing but
one shared count."""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

from ...mail.text import MessageText, extract

MIN_WORD, MAX_WORD = 3, 20
MAX_TOKENS = 3000           # per message: a huge message is judged by its first clues
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[$€£¥]?[^\W_]+(?:['.\-][^\W_]+)*%?")
_URL = re.compile(r"(?i)\b(?:(https?|ftp)://|www\.)([^\s<>\"'()\[\]{}]+)")
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_HOST = re.compile(r"\b((?:[a-z0-9-]+\.)+[a-z]{2,})\b")
_IP_LITERAL = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$|^[0-9a-f:]*:[0-9a-f:]*$")
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}\b")
# A run of this many non-blank characters is cut: no word, address or host
# is longer, and the address pattern would otherwise rescan a long run from
# each of its characters (a 50 KB run took seconds).
_LONG_RUN = re.compile(r"\S{256,}")
_ADDR = re.compile(r"<?([^<>\s@]+@[^<>\s@]+?)>?(?:\s|$)")
_WHOLE_HEADERS = ("x-mailer", "user-agent", "list-id", "precedence", "x-mailing-list",
                  "content-transfer-encoding", "mime-version", "importance", "x-priority",
                  "x-msmail-priority")
_LIST_FIELDS = frozenset(("x-beenthere", "x-mailman-version", "errors-to", "x-list",
                          "mailing-list", "x-mailing-list", "x-loop"))
_RECEIVED_READ = 4          # the first Received fields (ours and the hops before it)


def token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "big", signed=True)


def _domain(host: str) -> str:
    """The last two labels (three under a two-letter country code's second
    level, e.g. example.co.uk): what a spammer pays for, not the host."""
    labels = host.lower().strip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _host_tokens(prefix: str, host: str, out: dict[str, None]) -> None:
    host = host.lower().rstrip(".").split(":")[0].split("@")[-1]
    if not host:
        return
    if _IP_LITERAL.match(host):
        out[f"{prefix}:ip"] = None
        out[f"{prefix}:{host.rpartition('.')[0]}"] = None
        return
    out[f"{prefix}:{host}"] = None
    out[f"{prefix}:{_domain(host)}"] = None


def _words(prefix: str, text: str, out: dict[str, None]) -> None:
    text = text.lower()
    if _CJK_RUN.search(text):
        for run in _CJK_RUN.findall(text):
            if len(run) == 1:
                out[prefix + run] = None
            for i in range(len(run) - 1):
                out[prefix + run[i:i + 2]] = None
        text = _CJK_RUN.sub(" ", text)
    for w in _WORD.findall(text):
        n = len(w)
        if n < MIN_WORD:
            continue
        if n > MAX_WORD:
            # A long run of letters is base64, a hash or a tracking id: only
            # its shape is a clue.
            out[f"{prefix}skip:{w[0]}:{n // 10 * 10}"] = None
            continue
        out[prefix + w] = None


def _text_tokens(text: str, out: dict[str, None]) -> None:
    def url(m: re.Match) -> str:
        scheme = (m.group(1) or "http").lower()
        out[f"proto:{scheme}"] = None
        rest = m.group(2)
        host = ("www." + rest if m.group(0).lower().startswith("www.") else rest).split("/")[0]
        _host_tokens("url", host.split("?")[0], out)
        return " "

    text = _LONG_RUN.sub(lambda m: m.group()[:255] + " ", text)
    text = _URL.sub(url, text)
    for m in _EMAIL.finditer(text):
        _host_tokens("email", m.group(1), out)
    _words("", text, out)


def _address(value: str) -> str:
    m = _ADDR.search(value.strip() + " ")
    return m.group(1).lower() if m else ""


def _header_tokens(mt: MessageText, out: dict[str, None]) -> None:
    received = 0
    for name, value in mt.headers:
        if name.startswith("x-spam") or name == "x-bayes":
            continue
        # A mailing list writes half a dozen fields at once: counted as one
        # clue, not six that vote together (list spam would sail through).
        out["hdr:list" if name.startswith("list-") or name in _LIST_FIELDS
            else f"hdr:{name}"] = None
        if name == "received":
            received += 1
            if received <= _RECEIVED_READ:
                low = value.lower()
                for h in _HOST.findall(low):
                    _host_tokens("rcvd", h, out)
                for a, b, c in _IPV4.findall(low):
                    out[f"rcvd:ip:{a}.{b}.{c}"] = None
        elif name in ("from", "reply-to", "return-path", "sender"):
            addr = _address(value)
            if addr:
                out[f"{name}:addr:{addr}"] = None
                _host_tokens(f"{name}:dom", addr.rpartition("@")[2], out)
            if name == "from":
                _words("from:name:", value.split("<")[0] if "<" in value else "", out)
        elif name in ("to", "cc"):
            n = value.count("@")
            out[f"{name}:count:{min(n, 10) if n < 10 else '10+'}"] = None
        elif name == "message-id":
            dom = value.strip().strip("<>").rpartition("@")[2].lower()
            out[f"mid:dom:{dom or 'none'}"] = None
        elif name in _WHOLE_HEADERS:
            _words(f"{name}:", value, out)
        elif name == "content-type":
            m = re.search(r"charset=\"?([\w.:-]+)", value, re.I)
            if m:
                out[f"charset:{m.group(1).lower()}"] = None
    if "message-id" not in {n for n, _ in mt.headers}:
        out["mid:none"] = None


def from_line_stripped(raw: bytes) -> bytes:
    """A message file as mbox and the SpamAssassin corpus keep it starts with
    a "From sender date" line that is not a header field: drop it."""
    if raw.startswith(b"From "):
        return raw.partition(b"\n")[2]
    return raw


def tokenize(raw: bytes) -> list[str]:
    return tokenize_text(extract(from_line_stripped(raw)))


def tokenize_text(mt: MessageText) -> list[str]:
    """The distinct clues of one message, in order of appearance (capped)."""
    out: dict[str, None] = {}
    subject = mt.subject
    _words("s:", subject, out)
    if "!" in subject:
        out["s:!"] = None
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) > 0.7 * len(letters):
        out["s:shouting"] = None
    _header_tokens(mt, out)
    for part in mt.parts:
        out[f"part:{part.type}"] = None
        out[f"encoding:{part.encoding}"] = None
    if mt.has_html:
        out["html" if mt.has_plain else "html:only"] = None
    if mt.remote_images:
        out[f"html:images:{min(mt.remote_images, 5)}"] = None
    for why in mt.hidden:
        out[f"hidden:{why.split()[-1]}"] = None
    for link in mt.links:
        _text_tokens(link, out)
    _text_tokens(mt.body, out)
    return list(out)[:MAX_TOKENS]


def hashes(tokens: Iterable[str]) -> list[int]:
    return [token_hash(t) for t in tokens]
