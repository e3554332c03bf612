"""A stored message as the webmail shows it: decoded headers, one body
(HTML sanitised with nh3, remote images held back until asked for, or the
plain text), and the attachments. Works from the summary made at delivery
(mail.mime), so nothing is parsed twice."""
from __future__ import annotations

from dataclasses import dataclass, field
import nh3

from ..mail.charsets import codec_for
from ..mail.envelope import decode_words
from ..mail.mime import attachments, decoded_body

# Inline images a browser may show from a part (never SVG: it can carry script).
INLINE_IMAGES = frozenset({"image/png", "image/gif", "image/jpeg", "image/webp", "image/bmp"})

_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt",
         "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol",
         "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table",
         "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "center"}
_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
          "td": {"colspan", "rowspan", "align", "valign"}, "th": {"colspan", "rowspan", "align"},
          "table": {"width", "cellpadding", "cellspacing", "border"}, "font": {"color"},
          "*": {"title", "align", "dir", "lang"}}


def decode_text(data: bytes, charset: str | None) -> str:
    return data.decode(codec_for(charset), "replace")


@dataclass
class Shown:
    subject: str
    sender: str
    to: str
    cc: str
    date: int | None
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


def _content_ids(node: dict, path: tuple[int, ...] = ()) -> dict[str, tuple[str, str]]:
    """Content-ID (without <>) -> (part path, media type) of every leaf part."""
    out: dict[str, tuple[str, str]] = {}
    if node.get("parts"):
        for i, child in enumerate(node["parts"], 1):
            out.update(_content_ids(child, path + (i,)))
    elif node.get("id"):
        cid = node["id"].strip().strip("<>").strip()
        out.setdefault(cid, (".".join(map(str, path)) or "1", f"{node['type']}/{node['subtype']}"))
    return out


def part_path(summary: dict, part: str) -> tuple[int, ...]:
    """"1.2" -> (1, 2); a single-part message's body is part "1" (RFC 3501)."""
    path = tuple(int(x) for x in part.split("."))
    return () if path == (1,) and not summary["body"].get("parts") else path


def show(raw: bytes, summary: dict, *, load_images: bool = False, part_url: str = "") -> Shown:
    """part_url: the URL prefix a part path is appended to (cid: images)."""
    env = summary.get("envelope") or {}
    date = summary.get("date_epoch")
    shown = Shown(subject=summary.get("subject") or "", sender=_addresses(env, "from"),
                  to=_addresses(env, "to"), cc=_addresses(env, "cc"),
                  date=date)
    root = summary["body"]
    html = _first(root, "html")
    plain = _first(root, "plain")
    if html is not None:
        path, node = html
        body = decoded_body(raw, summary, path) or b""
        cids = {cid: part_url + p for cid, (p, t) in _content_ids(root).items()
                if t in INLINE_IMAGES}
        shown.html, shown.blocked_images = sanitise(decode_text(body, _charset(node)),
                                                    load_images=load_images, cids=cids)
        used = {u for u in cids.values() if u in shown.html}
    elif plain is not None:
        path, node = plain
        shown.text = decode_text(decoded_body(raw, summary, path) or b"", _charset(node))
    if html is None:
        used = set()
    shown.attachments = [dict(a, size=len(decoded_body(raw, summary, part_path(summary, a["part"])) or b"")) for a in attachments(summary)
                         if (a.get("filename") or not a["type"].startswith("text/"))
                         and part_url + a["part"] not in used]
    return shown


def sanitise(html: str, *, load_images: bool = False,
             cids: dict[str, str] | None = None) -> tuple[str, int]:
    """Mail HTML made safe to show: no scripts, handlers, styles, forms,
    frames, <base> or <meta>; links only http(s)/mailto; images only from
    the message's own parts (cid:) or the web (and then only when asked
    for), never data: or javascript:."""
    blocked = 0

    def attribute(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attr == "src":
            if value.lower().startswith("cid:"):
                return (cids or {}).get(value[4:].strip().strip("<>"))
            if not value.lower().startswith(("http://", "https://")):
                return None
            if not load_images:
                blocked += 1
                return None
        return value
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRS,
                      url_schemes={"http", "https", "mailto", "cid"}, link_rel="noopener noreferrer",
                      attribute_filter=attribute, strip_comments=True)
    return clean, blocked
