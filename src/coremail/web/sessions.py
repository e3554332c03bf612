"""Server-side web sessions: a random token in an HttpOnly cookie, and a
file under DIR/run/websessions named by the token's SHA-256 (so the files
do not give a session away) holding the user id, the CSRF token and the
expiry. Files, so every worker process and a restarted service see them."""
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
