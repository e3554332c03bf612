"""Server-side web sessions: a random token in an HttpOnly cookie, and a
file under DIR/run/websessions named by the token's SHA-256 (so the files
do not give a session away) holding the user id, the CSRF token and the
expiry. Files, so every worker process and a restarted service see them;
with a shared store (several nodes) rows of the store instead
(`StoreSessions`), so a browser's next request may go to any node."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

TOKEN_BYTES = 32


@dataclass
class WebSession:
    token: str
    user_id: int
    csrf: str
    expires: float


class SessionStore:
    def __init__(self, directory: Path, lifetime: float = 8 * 3600):
        self.dir = Path(directory)
        self.lifetime = lifetime

    def _path(self, token: str) -> Path:
        return self.dir / hashlib.sha256(token.encode()).hexdigest()

    def create(self, user_id: int) -> WebSession:
        s = WebSession(secrets.token_urlsafe(TOKEN_BYTES), user_id, secrets.token_urlsafe(24),
                       time.time() + self.lifetime)
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.dir / f".{secrets.token_hex(8)}"
        tmp.write_text(json.dumps({"user": s.user_id, "csrf": s.csrf, "expires": s.expires}))
        os.replace(tmp, self._path(s.token))
        return s

    def get(self, token: str | None) -> WebSession | None:
        """The live session for a cookie value; an expired one is removed."""
        if not token or len(token) > 100:
            return None
        path = self._path(token)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if data.get("expires", 0) < time.time():
            self.delete(token)
            return None
        return WebSession(token, int(data["user"]), str(data["csrf"]), float(data["expires"]))

    def delete(self, token: str | None) -> None:
        if token:
            try:
                self._path(token).unlink()
            except OSError:
                pass


class StoreSessions(SessionStore):
    """The same sessions as rows of the store (blocking: call from a thread)."""

    def __init__(self, store, lifetime: float = 8 * 3600):
        self.store = store
        self.lifetime = lifetime

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def create(self, user_id: int) -> WebSession:
        s = WebSession(secrets.token_urlsafe(TOKEN_BYTES), user_id, secrets.token_urlsafe(24),
                       time.time() + self.lifetime)
        self.store.web_session_put(self._key(s.token), s.user_id, s.csrf, s.expires, time.time())
        return s

    def get(self, token: str | None) -> WebSession | None:
        if not token or len(token) > 100:
            return None
        got = self.store.web_session_get(self._key(token))
        if got is None:
            return None
        if got[2] < time.time():
            self.delete(token)
            return None
        return WebSession(token, got[0], got[1], got[2])

    def delete(self, token: str | None) -> None:
        if token:
            self.store.web_session_delete(self._key(token))


def sessions_for(store, run_dir: Path) -> SessionStore:
    """Files under DIR/run/websessions, or the store's rows when several nodes share it."""
    return StoreSessions(store) if store.shared else SessionStore(Path(run_dir) / "websessions")
