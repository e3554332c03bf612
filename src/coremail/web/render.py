"""A stored message as the webmail shows it: decoded headers, one body
(HTML sanitised with nh3, remote images held back until asked for, or the
plain text), and the attachments. Works from the summary made at delivery
(mail.mime), so nothing is parsed twice."""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from datetime import datetime, timezone

import nh3

from ..mail.envelope import decode_words
from ..mail.mime import attachments, decoded_body

# Charsets that mail says and Python spells differently, or whose superset
# decodes what real mailers send under the narrower name.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
                    "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "big5": "big5hkscs"}

_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt",
         "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol",
         "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table",
         "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "center"}
_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
          "td": {"colspan", "rowspan", "align", "valign"}, "th": {"colspan", "rowspan", "align"},
          "table": {"width", "cellpadding", "cellspacing", "border"}, "font": {"color"},
          "*": {"title", "align", "dir", "lang"}}


def decode_text(data: bytes, charset: str | None) -> str:
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except LookupError:
        name = "utf-8"
    return data.decode(name, "replace")


@dataclass
class Shown:
    subject: str
    sender: str
    to: str
    cc: str
    date: str
    text: str | None = None          # the plain-text body, or
    html: str | None = None          # the sanitised HTML body
    blocked_images: int = 0
    attachments: list[dict] = field(default_factory=list)


def _addresses(env: dict, key: str) -> str:
    out = []
    for a in env.get(key) or []:
        name, _route, mailbox, host = (list(a) + [None] * 4)[:4]   # IMAP ENVELOPE order
        addr = f"{mailbox}@{host}" if mailbox and host else (mailbox or "")
        out.append(f"{decode_words(name)} <{addr}>" if name else addr)
    return ", ".join(out)


def _first(node: dict, subtype: str) -> tuple[tuple[int, ...], dict] | None:
    """The first text/<subtype> part that is not an attachment, depth first."""
    def walk(n: dict, path: tuple[int, ...]):
        if n.get("parts"):
            for i, child in enumerate(n["parts"], 1):
                got = walk(child, path + (i,))
                if got:
                    return got
            return None
        disp = (n.get("disposition") or [""])[0] or ""
        if n["type"] == "text" and n["subtype"] == subtype and disp.lower() != "attachment":
            return path, n
        return None
    return walk(node, ())


def _charset(node: dict) -> str | None:
    for k, v in node.get("params") or []:
        if k == "charset":
            return v
    return None


def show(raw: bytes, summary: dict, *, load_images: bool = False) -> Shown:
    env = summary.get("envelope") or {}
    date = summary.get("date_epoch")
    shown = Shown(subject=summary.get("subject") or "", sender=_addresses(env, "from"),
                  to=_addresses(env, "to"), cc=_addresses(env, "cc"),
                  date=datetime.fromtimestamp(date, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                  if date else "")
    root = summary["body"]
    html = _first(root, "html")
    plain = _first(root, "plain")
    if html is not None:
        path, node = html
        body = decoded_body(raw, summary, path) or b""
        shown.html, shown.blocked_images = sanitise(decode_text(body, _charset(node)),
                                                    load_images=load_images)
    elif plain is not None:
        path, node = plain
        shown.text = decode_text(decoded_body(raw, summary, path) or b"", _charset(node))
    shown.attachments = [a for a in attachments(summary) if a.get("filename")
                         or not a["type"].startswith("text/")]
    return shown


def sanitise(html: str, *, load_images: bool = False) -> tuple[str, int]:
    """Mail HTML made safe to show: no scripts, handlers, styles, forms,
    frames, <base> or <meta>; links only http(s)/mailto; images only from
    the web (and only when asked for), never data: or javascript:."""
    blocked = 0

    def attribute(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attr == "src":
            if not value.lower().startswith(("http://", "https://")):
                return None
            if not load_images:
                blocked += 1
                return None
        return value
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRS,
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer",
                      attribute_filter=attribute, strip_comments=True)
    return clean, blocked
