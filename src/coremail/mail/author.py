"""The author domain of a message: the domain of its one From mailbox
(RFC 5322 3.6.2). DKIM signing picks its key by it and DMARC (RFC 7489
3.1) aligns against it; a message with no From, several From fields or
several mailboxes in it has none."""
from __future__ import annotations

from .envelope import field_value, parse_addresses, scan_header


def author_domain(raw: bytes) -> str | None:
    fields, _, _ = scan_header(raw, 0, len(raw))
    froms = [f for f in fields if f[0] == "from"]
    if len(froms) != 1:
        return None
    boxes = [a for a in parse_addresses(field_value(raw, froms[0])) if a[3]]
    if len(boxes) != 1:
        return None
    domain = str(boxes[0][3]).strip().lower().rstrip(".")
    return domain or None
