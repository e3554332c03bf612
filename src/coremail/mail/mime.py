"""MIME structure of a stored message, parsed once at delivery.

Owns ``summarize`` (raw RFC 5322 octets -> a compact JSON-ready summary with
the byte offsets of every part), IMAP's BODY/BODYSTRUCTURE rendering and the
BODY[section] extraction, so the IMAP server never re-parses a message.
Broken MIME degrades to text/plain; nothing here raises on any input.

Summary layout (all JSON types)::

    {"v": 1, "size": octets, "envelope": {...}, "body": part,
     "subject": str, "from_display": str, "date_epoch": int | None,
     "has_attachment": bool}
    part = {"hs", "he", "bs", "be": header start, header end (where the blank
            line starts), body start, body end -- offsets into the raw bytes,
            "type", "subtype" (lower case), and when present: "params"
            [[name (lower case), value], ...], "id", "description",
            "encoding" (lower case), "disposition" [type, params], "language"
            [tags], "location", "lines" (text/* and message/*), "parts"
            (multipart), "envelope" and "message" (message/rfc822: the
            encapsulated header's envelope and its root part)}
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse

from coremail.mail.envelope import (
    ENVELOPE_FIELDS,
    build_envelope,
    clean_text,
    decode_words,
    first_values,
    from_display,
    imap_nstring,
    parse_date,
    render_envelope,
    scan_header,
)

__all__ = [
    "attachments",
    "decoded_body",
    "find_part",
    "normalize_crlf",
    "part_filename",
    "render_bodystructure",
    "render_envelope",
    "section_bytes",
    "summarize",
]

MAX_DEPTH = 32  # nesting of multipart and message parts
MAX_PARTS = 1000  # parts per message; a bomb of empty parts stops here
_MIME_FIELDS = frozenset(
    ("content-type", "content-transfer-encoding", "content-id", "content-description",
     "content-disposition", "content-language", "content-location")
)  # fmt: skip
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9a-z]+"
_MEDIA_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})")
_SECTION = re.compile(
    r"((?:[1-9][0-9]*\.)*[1-9][0-9]*)?\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?\s*(?:\((.*)\))?", re.I
)
_CONTINUATION = re.compile(r"([^*]+)\*([0-9]+)(\*?)")
_TEXT_PLAIN = ("text", "plain", [["charset", "US-ASCII"]])


def normalize_crlf(raw: bytes) -> bytes:
    """Bare LF and CR line endings made CRLF, as IMAP serves messages."""
    if b"\r" not in raw:
        return raw.replace(b"\n", b"\r\n")
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def _split_params(value: str) -> list[str]:
    """Split on ``;`` outside quoted strings, dropping (comments)."""
    pieces, buf = [], []
    quoted, depth, i, n = False, 0, 0, len(value)
    while i < n:
        c = value[i]
        if quoted:
            buf.append(c)
            if c == "\\" and i + 1 < n:
                i += 1
                buf.append(value[i])
            elif c == '"':
                quoted = False
        elif depth:
            depth += (c == "(") - (c == ")")
            i += c == "\\"
        elif c == '"':
            quoted = True
            buf.append(c)
        elif c == "(":
            depth = 1
        elif c == ";":
            pieces.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    pieces.append("".join(buf))
    return pieces


def _params(pieces: list[str]) -> list[list[str]]:
    out = []
    for piece in pieces:
        name, eq, value = piece.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not eq or not name:
            continue
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:])
        out.append([name, value])
    return out


def _param(params: list[list[str]] | None, name: str) -> str | None:
    for k, v in params or ():
        if k == name:
            return v
    return None


def _part(raw: bytes, start: int, end: int, depth: int, budget: list[int], digest: bool = False) -> tuple[dict, list]:
    fields, he, bs = scan_header(raw, start, end)
    node: dict = {"hs": start, "he": he, "bs": bs, "be": end}
    values = first_values(raw, fields, _MIME_FIELDS)
    ctype = values.get("content-type")
    parsed = None
    if ctype is not None:
        pieces = _split_params(ctype)
        m = _MEDIA_TYPE.fullmatch("".join(pieces[0].split()).lower())
        if m is not None:
            parsed = (m.group(1), m.group(2), _params(pieces[1:]))
    if parsed is None:
        # RFC 2045 5.2 and RFC 2046 5.1.5: the defaults, also for a bad header
        parsed = ("message", "rfc822", []) if digest and ctype is None else _TEXT_PLAIN
    mtype, subtype, params = parsed
    for key, name in (("id", "content-id"), ("description", "content-description"), ("location", "content-location")):
        if name in values:
            node[key] = values[name]
    if "content-transfer-encoding" in values:
        node["encoding"] = values["content-transfer-encoding"].strip().lower() or "7bit"
    if "content-disposition" in values:
        pieces = _split_params(values["content-disposition"])
        if pieces[0].strip():
            node["disposition"] = [pieces[0].strip().lower(), _params(pieces[1:])]
    if "content-language" in values:
        tags = [t.strip() for t in _split_params(values["content-language"].replace(",", ";")) if t.strip()]
        if tags:
            node["language"] = tags

    children = None
    if mtype == "multipart":
        boundary = _param(params, "boundary")
        if boundary and depth < MAX_DEPTH and budget[0] > 0:
            spans = _split(raw, bs, end, boundary.encode("utf-8", "replace"))
            if spans:
                children = []
                for s, e in spans[: budget[0]]:
                    budget[0] -= 1
                    children.append(_part(raw, s, e, depth + 1, budget, subtype == "digest")[0])
        if children is None:
            mtype, subtype, params = _TEXT_PLAIN  # no boundary or no parts: show it as text
    elif mtype == "message" and subtype == "rfc822":
        if depth < MAX_DEPTH and budget[0] > 0:
            budget[0] -= 1
            inner, inner_fields = _part(raw, bs, end, depth + 1, budget)
            node["envelope"] = build_envelope(raw, inner_fields)
            node["message"] = inner
        else:
            mtype, subtype, params = _TEXT_PLAIN
    node["type"], node["subtype"] = mtype, subtype
    if params:
        node["params"] = [list(p) for p in params]
    if children is not None:
        node["parts"] = children
    elif mtype == "text" or "message" in node:
        node["lines"] = raw.count(b"\n", bs, end) + (end > bs and raw[end - 1] != 10)
    return node, fields


def _split(raw: bytes, bs: int, be: int, boundary: bytes) -> list[tuple[int, int]]:
    """Spans of the body parts between ``--boundary`` lines (RFC 2046 5.1.1)."""
    delim = b"--" + boundary
    spans = []
    start = None
    pos = bs
    while (i := raw.find(delim, pos, be)) >= 0:
        pos = i + 1
        if i != bs and raw[i - 1] != 10:
            continue  # not at the start of a line
        after = i + len(delim)
        close = raw.startswith(b"--", after, be)
        nl = raw.find(b"\n", after, be)
        line_end = be if nl < 0 else nl + 1
        if raw[after + 2 * close : line_end].strip():
            continue  # a longer line that merely starts like the delimiter
        if start is not None:
            e = i  # the line break before a delimiter belongs to it
            if e > start and raw[e - 1] == 10:
                e -= 1 + (e - 1 > start and raw[e - 2] == 13)
            spans.append((start, max(e, start)))
        if close:
            return spans
        start = pos = line_end
    if start is not None:
        spans.append((start, be))  # no close delimiter: the last part runs to the end
    return spans


def _walk(node: dict):
    yield node
    for child in node.get("parts", ()):
        yield from _walk(child)
    if "message" in node:
        yield from _walk(node["message"])


def _summarize(raw: bytes) -> dict:
    body, fields = _part(raw, 0, len(raw), 0, [MAX_PARTS])
    env = build_envelope(raw, fields)
    return {
        "v": 1,
        "size": len(raw),
        "envelope": env,
        "body": body,
        "subject": decode_words(env["subject"]),
        "from_display": from_display(env),
        "date_epoch": parse_date(env["date"]),
        "has_attachment": any(_is_attachment(n, n is body) for n in _walk(body)),
    }


def summarize(raw: bytes) -> dict:
    """Parse a message once; the result is what FETCH renders from."""
    try:
        return _summarize(raw)
    except Exception:  # pragma: no cover - fuzzed not to happen; a parser slip must not refuse mail
        n = len(raw)
        body = {"hs": 0, "he": 0, "bs": 0, "be": n, "type": "text", "subtype": "plain", "lines": raw.count(b"\n")}
        env = {name.replace("-", "_"): None for name in ENVELOPE_FIELDS}
        return {"v": 1, "size": n, "envelope": env, "body": body, "subject": "", "from_display": "",
                "date_epoch": None, "has_attachment": False}  # fmt: skip


def _is_attachment(node: dict, root: bool) -> bool:
    disp = node.get("disposition")
    if disp and disp[0] == "attachment":
        return True
    if root or node["type"] == "multipart":
        return False
    return node["type"] == "message" or part_filename(node) is not None


def part_filename(node: dict) -> str | None:
    """A part's file name for display: RFC 2231, RFC 2047 or plain, else None."""
    disp = node.get("disposition")
    for params, key in ((disp[1] if disp else None, "filename"), (node.get("params"), "name")):
        value = _rfc2231(params or (), key)
        if value:
            return value
    return None


def _rfc2231(params: list[list[str]], key: str) -> str | None:
    pieces: dict[int, tuple[str, bool]] = {}
    plain = None
    for name, value in params:
        if name == key and plain is None:
            plain = value
        elif name == key + "*":
            pieces.setdefault(0, (value, True))
        elif (m := _CONTINUATION.fullmatch(name)) and m.group(1) == key:
            pieces.setdefault(int(m.group(2)), (value, bool(m.group(3))))
    if not pieces:
        return decode_words(plain) if plain else None
    charset, out = "utf-8", []
    for n in sorted(pieces):
        value, encoded = pieces[n]
        if encoded:
            if n == min(pieces) and value.count("'") >= 2:
                cs, _lang, value = value.split("'", 2)
                charset = cs or charset
            try:
                out.append(clean_text(urllib.parse.unquote(value, encoding=charset, errors="replace")))
            except (LookupError, ValueError):  # unknown or non-text codec names
                out.append(urllib.parse.unquote(value, errors="replace"))
        else:
            out.append(value)
    return "".join(out)


def attachments(summary: dict) -> list[dict]:
    """Parts a webmail lists as attachments: part path, name, type, size."""
    out = []

    def visit(node: dict, path: tuple[int, ...]) -> None:
        if _is_attachment(node, not path):
            out.append({"part": ".".join(map(str, path)) or "1", "filename": part_filename(node),
                        "type": f"{node['type']}/{node['subtype']}", "size": node["be"] - node["bs"]})  # fmt: skip
            return
        for i, child in enumerate(node.get("parts", ()), 1):
            visit(child, path + (i,))

    visit(summary["body"], ())
    return out


def _params_list(params: list[list[str]] | None) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(imap_nstring(k.upper()) + b" " + imap_nstring(v) for k, v in params) + b")"


def _extension(node: dict) -> list[bytes]:
    disp = node.get("disposition")
    lang = node.get("language")
    return [
        b"(" + imap_nstring(disp[0].upper()) + b" " + _params_list(disp[1]) + b")" if disp else b"NIL",
        b"NIL" if not lang else imap_nstring(lang[0]) if len(lang) == 1 else
        b"(" + b" ".join(map(imap_nstring, lang)) + b")",
        imap_nstring(node.get("location")),
    ]  # fmt: skip


def _render(node: dict, extensible: bool) -> bytes:
    if "parts" in node:
        items = [b"".join(_render(p, extensible) for p in node["parts"]), imap_nstring(node["subtype"].upper())]
        if extensible:
            items += [_params_list(node.get("params")), *_extension(node)]
        return b"(" + b" ".join(items) + b")"
    items = [
        imap_nstring(node["type"].upper()),
        imap_nstring(node["subtype"].upper()),
        _params_list(node.get("params")),
        imap_nstring(node.get("id")),
        imap_nstring(node.get("description")),
        imap_nstring(node.get("encoding", "7bit").upper()),
        str(node["be"] - node["bs"]).encode(),
    ]
    if "message" in node:
        items += [render_envelope(node["envelope"]), _render(node["message"], extensible)]
    if "lines" in node:
        items.append(str(node["lines"]).encode())
    if extensible:
        items += [b"NIL", *_extension(node)]  # NIL: no Content-MD5 check is offered
    return b"(" + b" ".join(items) + b")"


def render_bodystructure(summary: dict, extensible: bool = True) -> bytes:
    """FETCH BODYSTRUCTURE (extensible) or BODY (not), RFC 3501 section 7.4.2."""
    return _render(summary["body"], extensible)


def find_part(summary: dict, part: tuple[int, ...] | list[int]) -> dict | None:
    """The node an IMAP part number names (RFC 3501 6.4.5), or None."""
    node = summary["body"]
    for depth, n in enumerate(part):
        if depth and "message" in node:
            node = node["message"]  # 2.1 is inside the message that part 2 holds
        children = node.get("parts")
        if children is not None:
            if not 0 < n <= len(children):
                return None
            node = children[n - 1]
        elif n != 1:
            return None
    return node


def _header_block(raw: bytes, node: dict) -> bytes:
    """A part's header with its blank line, made up when the message lacks one."""
    if node["bs"] > node["he"]:
        return raw[node["hs"] : node["bs"]]
    block = raw[node["hs"] : node["he"]]
    if block and not block.endswith(b"\n"):
        block += b"\r\n"
    return block + b"\r\n"


def _parse_spec(spec) -> tuple[tuple[int, ...], str | None, tuple[str, ...]]:
    if not isinstance(spec, str):
        return tuple(spec.part), spec.text, tuple(spec.fields)
    m = _SECTION.fullmatch(spec.strip())
    if m is None:
        return (0,), None, ()  # names no part
    part = tuple(int(x) for x in m.group(1).split(".")) if m.group(1) else ()
    fields = tuple(m.group(3).replace('"', " ").split()) if m.group(3) else ()
    return part, m.group(2).upper() if m.group(2) else None, fields


def section_bytes(raw: bytes, summary: dict, spec) -> bytes | None:
    """The octets of BODY[spec]; None when the part does not exist.

    ``spec`` is the text between the brackets ("1.2.MIME", "HEADER.FIELDS
    (FROM TO)", "") or the parser's Section (anything with part, text, fields).
    Headers come with their terminating blank line, as RFC 3501 requires.
    """
    part, text, fields = _parse_spec(spec)
    node = find_part(summary, part) if part else summary["body"]
    if node is None:
        return None
    if text is None:
        return raw[node["bs"] : node["be"]] if part else raw
    if text == "MIME":
        return _header_block(raw, node) if part else None
    if part:
        node = node.get("message")
        if node is None:
            return b""  # HEADER and TEXT only apply to a message/rfc822 part
    if text == "TEXT":
        return raw[node["bs"] : node["be"]]
    if text == "HEADER":
        return _header_block(raw, node)
    wanted = {f.lower() for f in fields}
    keep = text == "HEADER.FIELDS"
    found, _, _ = scan_header(raw, node["hs"], node["he"])
    picked = []
    for f in found:
        if (f[0] in wanted) == keep:
            chunk = raw[f[1] : f[2]]
            picked.append(chunk if chunk.endswith(b"\n") else chunk + b"\r\n")
    return b"".join(picked) + b"\r\n"


def decoded_body(raw: bytes, summary: dict, part: tuple[int, ...] | list[int]) -> bytes | None:
    """A part's body with its transfer encoding undone (BINARY[...], webmail)."""
    node = find_part(summary, part) if part else summary["body"]
    if node is None:
        return None
    body = raw[node["bs"] : node["be"]]
    encoding = node.get("encoding")
    if encoding == "base64":
        body = body.translate(None, _NOT_BASE64)
        if len(body) % 4 == 1:
            body = body[:-1]  # a stray sextet cannot make an octet
        return binascii.a2b_base64(body + b"=" * (-len(body) % 4))
    if encoding == "quoted-printable":
        return qp_decode(body)
    return body


_NOT_BASE64 = bytes(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def qp_decode(body: bytes) -> bytes:
    """Quoted-printable as RFC 2045 6.7 reads it: trailing blanks on a line
    are transport padding and go, "=" at a line's end (blanks after it too)
    is a soft break; binascii.a2b_qp keeps the blanks."""
    out = []
    for line in body.splitlines(keepends=True):
        text = line.rstrip(b"\r\n")
        ending = line[len(text):]
        text = text.rstrip(b" \t")
        if text.endswith(b"="):
            text, ending = text[:-1], b""
        out.append(_QP_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), text) + ending)
    return b"".join(out)


def binary_to_base64(raw: bytes) -> bytes:
    """The message with every leaf part that holds NUL octets (binary content,
    as an APPEND with literal8 may bring, RFC 3516 4.3) re-encoded as base64,
    so BODY[] never sends NUL; other octets are left as they are."""
    if b"\x00" not in raw:
        return raw
    summary = summarize(raw)
    leaves = [n for n in _walk(summary["body"]) if "parts" not in n and "message" not in n
              and b"\x00" in raw[n["bs"]:n["be"]]]
    for n in sorted(leaves, key=lambda n: n["hs"], reverse=True):   # later parts first: offsets hold
        body = base64.encodebytes(raw[n["bs"]:n["be"]]).replace(b"\n", b"\r\n")
        fields, _, _ = scan_header(raw, n["hs"], n["he"])
        cte = b"Content-Transfer-Encoding: base64\r\n"
        old = next((f for f in fields if f[0] == "content-transfer-encoding"), None)
        head = (raw[n["hs"]:old[1]] + cte + raw[old[2]:n["he"]] if old is not None
                else raw[n["hs"]:n["he"]] + cte)
        if old is None and n["he"] > n["hs"] and not raw[n["hs"]:n["he"]].endswith(b"\n"):
            head = raw[n["hs"]:n["he"]] + b"\r\n" + cte
        raw = raw[:n["hs"]] + head + raw[n["he"]:n["bs"]] + body + raw[n["be"]:]
    return raw

