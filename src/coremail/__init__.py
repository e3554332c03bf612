"""coremail: an all-in-one mail system (SMTP, queue, POP3, IMAP, web)."""
