"""What every IMAP command module shares with the session: the connection
states of RFC 3501 and the refusals a handler raises (`No`, `Bad`), with the
tagged reply each one, or a store refusal, becomes. It imports nothing of
imapd, so session.py, folders.py and selected.py all depend on it alone.
"""
from __future__ import annotations

from ..store.interfaces import QuotaExceeded, StorageFull, StoreError

NOTAUTH, AUTH, SELECTED, LOGOUT = "notauth", "auth", "selected", "logout"
ANY = (NOTAUTH, AUTH, SELECTED)
AUTHED = (AUTH, SELECTED)


class No(Exception):
    """A tagged NO, optionally with a response code such as TRYCREATE."""

    def __init__(self, text: str, code: str | None = None, status: str = "NO") -> None:
        super().__init__(text)
        self.text, self.code, self.status = text, code, status


class Bad(No):
    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text, code, "BAD")


def refusal(tag: str, e: No | StoreError) -> bytes:
    """The tagged reply for a handler's No/Bad or a store refusal."""
    if isinstance(e, No):
        code = f"[{e.code}] " if e.code else ""
        return f"{tag} {e.status} {code}{e.text}\r\n".encode()
    if isinstance(e, QuotaExceeded):
        code = "OVERQUOTA"
    elif isinstance(e, StorageFull):  # the disk, not the user's quota: temporary (RFC 5530)
        code = "UNAVAILABLE"
    else:
        code = "SERVERBUG"
    return f"{tag} NO [{code}] {e.text}\r\n".encode()
