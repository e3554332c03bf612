"""The IMAP command table: each command name, the states it is allowed in,
and its handler (a method of the session, or a function of folders.py or
selected.py; each takes the session and the parsed command).

The service owns one `CommandTable`, built when the service is made, and a
session looks its commands up there; so this module imports the handlers and
none of them imports it (nor each other).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from . import folders, selected
from .responses import ANY, AUTHED, NOTAUTH, SELECTED
from .session import ImapSession

Handler = Callable[..., Awaitable[str]]


class CommandTable:
    def __init__(self) -> None:
        S = ImapSession
        self._table: dict[str, tuple[tuple[str, ...], Handler]] = {
            "CAPABILITY": (ANY, S.cmd_capability), "NOOP": (ANY, S.cmd_noop), "LOGOUT": (ANY, S.cmd_logout),
            "ID": (ANY, S.cmd_id), "STARTTLS": ((NOTAUTH,), S.cmd_starttls), "LOGIN": ((NOTAUTH,), S.cmd_login),
            "AUTHENTICATE": ((NOTAUTH,), S.cmd_authenticate), "ENABLE": (AUTHED, S.cmd_enable),
            "IDLE": (AUTHED, S.cmd_idle),
            "SELECT": (AUTHED, folders.select), "EXAMINE": (AUTHED, folders.select),
            "CREATE": (AUTHED, folders.create), "DELETE": (AUTHED, folders.delete),
            "RENAME": (AUTHED, folders.rename), "SUBSCRIBE": (AUTHED, folders.subscribe),
            "UNSUBSCRIBE": (AUTHED, folders.subscribe), "LIST": (AUTHED, folders.list_),
            "LSUB": (AUTHED, folders.list_), "STATUS": (AUTHED, folders.status),
            "APPEND": (AUTHED, folders.append), "NAMESPACE": (AUTHED, folders.namespace),
            "GETQUOTA": (AUTHED, folders.getquota), "GETQUOTAROOT": (AUTHED, folders.getquotaroot),
            "CHECK": ((SELECTED,), S.cmd_noop), "CLOSE": ((SELECTED,), selected.close),
            "UNSELECT": ((SELECTED,), selected.unselect), "EXPUNGE": ((SELECTED,), selected.expunge),
            "SEARCH": ((SELECTED,), selected.search), "SORT": ((SELECTED,), selected.sort),
            "THREAD": ((SELECTED,), selected.thread), "FETCH": ((SELECTED,), selected.fetch),
            "STORE": ((SELECTED,), selected.store), "COPY": ((SELECTED,), selected.copy),
            "MOVE": ((SELECTED,), selected.copy),
        }  # fmt: skip

    def lookup(self, name: str, state: str) -> Handler | None:
        """The handler of command `name` in `state`, or None if not allowed there."""
        entry = self._table.get(name)
        if entry is None or state not in entry[0]:
            return None
        return entry[1]
