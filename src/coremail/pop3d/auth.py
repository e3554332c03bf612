"""POP3 login helpers: they now live in services/login.py (shared with IMAP);
re-exported here so pop3d's imports stay as they were."""
from ..services.login import (Authenticator, FailureThrottle, LoginCache, SaslError,  # noqa: F401
                              decode_plain)
