"""The POP3 service (RFC 1939, 2449 CAPA and response codes, 2595 STLS,
5034 SASL). Decisions a client or an operator can see:

- Octet counts (STAT, LIST, RETR's +OK) are exactly what RETR sends before
  dot-stuffing; a stored blob with bare LFs is sent normalised to CRLF and
  counted as sent (wire.py).
- UIDL is "<INBOX uidvalidity>.<uid>": stable for the life of the message.
- The maildrop is a snapshot at login; DELE is applied only by QUIT.
- One session per user (flock in DIR/run/locks); a second login waits up to
  3 s, then gets -ERR [IN-USE].
- Wrong password: -ERR [AUTH]; too many failures from one address:
  -ERR [LOGIN-DELAY] until the window passes (the password is not checked).
- Password logins (USER/PASS, AUTH PLAIN) need TLS (STLS or pop3s) unless the
  client is on loopback or policy.allow_plaintext_auth is set; CAPA lists
  USER and SASL PLAIN only when they would be accepted.
- Autologout after max(limits.idle_timeout, 10 min), as RFC 1939 asks.
- A graceful stop answers -ERR [SYS/TEMP] and applies no DELE.
"""
