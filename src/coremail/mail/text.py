"""The text of a message as the filters read it: decoded header fields, every
text part in its charset (GBK and friends included), RFC 2047 words and
RFC 2231 file names undone, base64/QP removed, HTML reduced to its words,
plus the few structural facts the rules ask about (links, remote images,
attachment names, encodings that hide text).

Built on mail.mime's summary (the project's one fuzzed MIME parser) so
filters, IMAP and the webmail agree on the structure. HTML is reduced with
the standard library's tokenising HTMLParser: the filters want words and
URLs, not a sanitised document (that is nh3's job in the webmail).
Nothing here raises on any input; a broken message yields what text it has.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from .envelope import clean_text, decode_words, field_value, scan_header
from .mime import _walk, decoded_body, part_filename, summarize

MAX_TEXT = 256 * 1024      # characters of body text kept: enough for any rule
MAX_PART = 2 * 1024 * 1024  # bytes of one text part decoded

# Names mail programs write for charsets Python spells otherwise, or supersets
# that decode more of what is really sent (GB2312 mail is often GBK).
_CHARSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
             "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "unicode-1-1-utf-7": "utf-7",
             "iso-8859-8-i": "iso-8859-8", "windows-874": "cp874", "x-mac-roman": "mac_roman",
             "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8"}
_URL = re.compile(r"\bhttps?://[^\s<>\"')\]]+", re.IGNORECASE)
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_SKIP_TAGS = frozenset(("script", "style", "head", "title"))
_BLOCK_TAGS = frozenset(("p", "br", "div", "tr", "td", "th", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                         "table", "blockquote", "hr"))


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes in the named charset; unknown names read as UTF-8, errors replaced."""
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _CHARSETS.get(name, name)
    try:
        if codecs.lookup(name).name in ("base64", "hex", "zlib", "bz2", "rot-13", "uu", "quopri"):
            name = "utf-8"   # bytes-to-bytes codecs are not charsets
        return clean_text(data.decode(name, "replace"))
    except (LookupError, ValueError, TypeError):
        return clean_text(data.decode("utf-8", "replace"))


@dataclass
class Part:
    type: str                  # "text/plain"
    filename: str | None
    size: int                  # encoded bytes
    encoding: str              # content-transfer-encoding, lower case ("7bit" when absent)


@dataclass
class MessageText:
    headers: list[tuple[str, str]] = field(default_factory=list)   # (lower name, decoded value)
    subject: str = ""
    body: str = ""                  # every text part's words, HTML reduced, joined
    parts: list[Part] = field(default_factory=list)
    links: list[str] = field(default_factory=list)       # URLs in text and in <a href>
    remote_images: int = 0          # <img src="http..."> in HTML parts
    has_plain: bool = False         # a text/plain part (beside or instead of HTML)
    has_html: bool = False
    hidden: list[str] = field(default_factory=list)      # why text may be hidden, in words

    def header(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    @property
    def searchable(self) -> str:
        """Subject and body, lower case: what keyword rules look in."""
        return (self.subject + "\n" + self.body).lower()


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[str] = []
        self.remote_images = 0
        self.hidden_styles = 0
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").lower().startswith(("http://", "https://")):
            self.links.append(a["href"].strip())
        elif tag == "img" and a.get("src", "").strip().lower().startswith(("http://", "https://",
                                                                            "//")):
            self.remote_images += 1
        style = a.get("style", "").replace(" ", "").lower()
        if "display:none" in style or "font-size:0" in style or "visibility:hidden" in style:
            self.hidden_styles += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _SKIP_TAGS:
            self._skip -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(html: str) -> tuple[str, list[str], int, int]:
    """(words, links, remote images, elements styled invisible) of an HTML text."""
    p = _HtmlText()
    try:
        p.feed(html)
        p.close()
    except Exception:  # HTMLParser is lenient; keep whatever it read before a slip
        pass
    return "".join(p.out), p.links, p.remote_images, p.hidden_styles


def _charset(node: dict) -> str | None:
    for k, v in node.get("params") or ():
        if k == "charset":
            return v
    return None


def _tidy(text: str) -> str:
    """Blank runs made one space, empty lines dropped."""
    lines = (" ".join(ln.split()) for ln in text.split("\n"))
    return "\n".join(ln for ln in lines if ln)


def extract(raw: bytes) -> MessageText:
    """The message's text and facts; never raises, always returns text."""
    try:
        return _extract(raw)
    except Exception:  # pragma: no cover - fuzzed not to happen; a slip must not refuse mail
        return MessageText(body=clean_text(raw[:MAX_TEXT].decode("utf-8", "replace")))


def _extract(raw: bytes) -> MessageText:
    summary = summarize(raw)
    root = summary["body"]
    out = MessageText()
    fields, _, _ = scan_header(raw, 0, root["he"])
    for f in fields:
        value = field_value(raw, f)
        out.headers.append((f[0], clean_text(decode_words(value)) if "=?" in value
                            else clean_text(value)))
    out.subject = summary.get("subject") or ""
    texts: list[str] = []
    size = 0
    for node in _walk(root):
        if node["type"] == "multipart":
            continue
        ctype = f"{node['type']}/{node['subtype']}"
        name = part_filename(node)
        enc = node.get("encoding") or "7bit"
        out.parts.append(Part(ctype, name, node["be"] - node["bs"], enc))
        disp = node.get("disposition")
        if node["type"] != "text" or (disp and disp[0] == "attachment") or size >= MAX_TEXT:
            continue
        node = dict(node, be=min(node["be"], node["bs"] + MAX_PART))
        data = decoded_body(raw, {"body": node}, ()) or b""
        text = decode_text(data, _charset(node))
        if node["subtype"] == "html":
            out.has_html = True
            text, links, images, styled = html_to_text(text)
            out.links.extend(links)
            out.remote_images += images
            if styled:
                out.hidden.append(f"{styled} HTML element(s) styled invisible")
        else:
            out.has_plain = True
        if enc == "base64" and node["type"] == "text" and root is node:
            out.hidden.append("the text is base64-encoded although it is plain text")
        texts.append(text)
        size += len(text)
    body = "\n".join(texts)
    if not (body.isascii() and out.subject.isascii()):   # ASCII has none of them
        invisible = len(_INVISIBLE.findall(body)) + len(_INVISIBLE.findall(out.subject))
        if invisible >= 3:
            out.hidden.append(f"{invisible} invisible or direction-changing characters")
        out.subject = _INVISIBLE.sub("", out.subject)
        body = _INVISIBLE.sub("", body)
    body = _tidy(body)[:MAX_TEXT]
    out.body = body
    seen = set(out.links)
    for url in (_URL.findall(body) if "://" in body else ()):
        if url not in seen:
            seen.add(url)
            out.links.append(url)
    return out
