"""The webadmin at /webadmin/: the whole administration in a browser, over
the same services as `userutil` and `coremail config` (services/accounts,
settings, queue, audit) and the supervisor's control socket. Thin pages:
console.py (access, CSRF, the audit trail, the down-service banner),
accounts.py (domains, users, aliases, forwards), system.py (dashboard,
settings, queue, services, audit log), chart.py (the dashboard's SVG)."""
