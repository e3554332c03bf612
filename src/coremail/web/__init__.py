"""The `web` service: the webmail at /coremail/ (and, later, the webadmin at
/webadmin/), server-rendered pages over the same services as IMAP and SMTP."""
