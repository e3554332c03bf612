"""`coremail init`: make a home directory with its configuration, TLS
certificate, database, primary domain and admin account. Refuses to touch an
existing home."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import CONFIG_RELATIVE, build_settings
from ..mail.address import AddressError, normalise_domain
from ..mail.dkimkeys import ensure_keys
from ..mail.srs import ensure_secret
from ..proto.tls import make_self_signed
from ..store import open_store
from .accounts import AccountError, Accounts, check_password
from . import sharedconf
from .passwords import generate_password

PRIVILEGED = dict(smtp=25, submission=587, smtps=465, pop3=110, pop3s=995, imap=143,
                  imaps=993, http=80, https=443)
UNPRIVILEGED = dict(smtp=2525, submission=2587, smtps=2465, pop3=2110, pop3s=2995,
                    imap=2143, imaps=2993, http=8080, https=8443)

TEMPLATE = """\
# coremail configuration. Every key can also be set from the environment as
# COREMAIL_<SECTION>__<KEY>, e.g. COREMAIL_LISTEN__SMTP=2525, which wins over
# this file. `coremail config set KEY VALUE` validates and writes a key here;
# running services pick changes up within a few seconds (ports need a restart).
# Sizes take K, M, G suffixes; durations s, m, h, d.

[server]
hostname = "{hostname}"   # HELO name, certificate name, Received headers
domain = "{domain}"       # primary domain: a bare local part logs in here

[listen]
address = "0.0.0.0"       # 127.0.0.1 to serve this machine only
# A port of 0 turns that listener off.
smtp = {smtp}             # MX: mail from the world for local domains
submission = {submission} # STARTTLS, then AUTH: mail programs send here
smtps = {smtps}           # implicit TLS submission
pop3 = {pop3}             # POP3 with STLS
pop3s = {pop3s}           # POP3 over implicit TLS
imap = {imap}             # IMAP with STARTTLS
imaps = {imaps}           # IMAP over implicit TLS
http = {http}             # webmail at /coremail/, webadmin at /webadmin/
https = {https}           # the same over TLS with conf/tls (session cookies Secure there)

[delivery]
relayhost = ""            # "host:port" sends all outbound mail there; empty: MX look-up
nameservers = []          # e.g. ["127.0.0.1:5353"]; empty: the system resolver
smtp_port = 25            # the port outbound delivery connects to on an MX host
retry_intervals = ["5m", "10m", "30m", "1h", "2h", "4h"]  # then every last interval
max_queue_time = "5d"     # then the sender gets a bounce
# concurrency = 100            # outbound connections at once, all deliveragent workers together
# per_domain_concurrency = 10  # of them to one destination domain
# connect_timeout = "30s"      # to connect to a remote server
# command_timeout = "5m"       # for each reply of a remote server

[limits]
max_message_size = "50M"  # 552 5.3.4 above it
max_recipients = 100      # per message; 452 4.5.3 past it
default_quota = "1G"      # for users added without --quota
# max_line_length = 4096      # longest command line accepted
# max_header_size = "1M"     # the header section of a message
# max_unknown_commands = 10   # then the connection is closed
# max_unknown_recipients = 5  # per SMTP session: from the 3rd on each 550 5.1.1 waits longer
#                             # (1 s, 2 s, 4 s...), past it 421, counted like a failed login
# max_connections_per_ip = 50  # at once from one client address, every protocol
# listen_backlog = 1024       # connections waiting to be accepted, every listener
# auth_failures = 5           # failed logins per client IP (every protocol) within auth_window,
# auth_window = "10m"         # then logins from that IP are refused for a while
# auth_queue = 16             # password checks waiting per process (2 run at once); beyond: a
#                             # temporary refusal (SMTP 454, POP3 -ERR [SYS/TEMP], IMAP NO)
# idle_timeout = "5m"        # an SMTP client that sends nothing this long is disconnected
# data_timeout = "10m"       # longest an SMTP DATA transfer may take

[policy]
allow_sender_mismatch = false  # may an authenticated user send as another address? 553 5.7.1 if not
allow_plaintext_auth = false   # POP3/IMAP password logins without TLS from other hosts

[antispam]
# Every message SMTP takes passes the checks in this order: allow/block lists
# (`coremail filter`), DNSBL, SPF/DKIM/DMARC, rules, the fingerprint counter,
# the trainable score, the virus scan. Their scores are summed.
enabled = true            # false: no anti-spam checks at all (the virus scan still runs)
junk_score = 6.0          # at or above: delivered to the recipient's Junk folder
reject_score = 15.0       # at or above: refused at the end of DATA (550 5.7.1); 0: never
dnsbl = []                # DNSBL zones for the client IP, e.g. ["zen.spamhaus.org"]
dnsbl_action = "reject"   # "reject" (554 5.7.1 naming the zone) or "score"
fingerprint_threshold = 50  # more similar messages than this inside the window: refused (0: off)
fingerprint_window = "1h" # how long similar messages are counted
fingerprint_internal = true # count authenticated senders' mail too (a hijacked account)
bayes = true              # the trainable score
bayes_expire_after = "90d" # a clue neither trained nor met in scored mail this long (0: never) ...
bayes_expire_count = 2    # ... is forgotten when it was seen in at most this many messages
bayes_max_tokens = 1000000 # largest model (clues); beyond it the least recently seen go (0: no bound)

[antivirus]
clamd = ""                # "unix:/run/clamav/clamd.ctl" or "HOST:PORT"; empty: no clamd scanning
timeout = "30s"           # per message
on_error = "tempfail"     # clamd down or timed out: "tempfail" (451 4.7.0, the sender retries),
                          # "accept" (delivered with X-Virus-Status: Unchecked) or "reject"
# stream_max = "25M"      # clamd's StreamMaxLength: larger messages are not sent to clamd
#                         # (delivered with X-Virus-Status: Unchecked and why)
# connections = 10        # to clamd per SMTP process, reused (IDSESSION); keep under MaxThreads
# Built-in checks, with or without clamd: executables, scripts, shortcuts and disk images
# by name and content (also inside zip, 7z and rar archives), encrypted archives, Office
# macros, archive bombs.
attachments = "reject"    # dangerous attachments: "reject" (554 5.7.1), "score" or "off"
# max_depth = 3           # archives inside archives looked into
# max_ratio = 100         # an archive member expanding more than this: an archive bomb
# max_expanded = "100M"   # unpacked bytes per message, then: an archive bomb

[authentication]
dkim_sign = true          # outbound mail from local domains is DKIM-signed (keys in conf/dkim/;
                          # `coremail dns DOMAIN` prints the records to publish)
spf = true                # inbound (port 25): the sender's SPF record is checked
dkim_verify = true        # inbound: every DKIM signature is verified
dmarc = true              # inbound: the From domain's DMARC policy is applied
                          # (p=reject: 550 5.7.1; p=quarantine: Junk)
srs = true                # forwards to remote addresses get an SRS0 envelope sender
                          # (secret in conf/srs.secret), so they pass SPF there

[workers]
# worker processes per service (they share the ports)
smtp = 2                  # processes serving SMTP
pop3 = 2                  # processes serving POP3
imap = 2                  # processes serving IMAP
# web = 1                 # processes serving the webmail and the webadmin
deliveragent = 2          # outbound delivery; the concurrency limits are shared among them

[storage]
database = "{database}"   # empty: SQLite in DIR/data/coremail.db; several nodes share
                          # "postgresql+psycopg://USER:PW@HOST/DB" (init --join adds a node)
blobs = "{blobs}"         # the message files; empty: DIR/data/blobs; several nodes: one
                          # directory every node mounts at the same path (NFS, CephFS, ...)

[log]
level = "info"            # debug, info, warning or error

[trace]
enabled = true            # record what happens to each message, for `coremail trace`
keep = "30d"              # then its events are purged
"""


class HomeExists(Exception):
    pass


class JoinError(Exception):
    """The database named by --join (or --database) cannot take this node."""


PRIMARY_DOMAIN_KEY = "system.primary_domain"   # a store setting: what a joining node serves


@dataclass
class InitResult:
    home: Path
    domain: str
    hostname: str
    admin: str
    password: str | None   # set only when generated here
    ports: dict[str, int]
    privileged: bool


def can_bind_privileged() -> bool:
    if os.geteuid() == 0:
        return True
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return False
    return start <= 25


def _toml_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _prepare(home: Path) -> Path:
    cfg_path = home / CONFIG_RELATIVE
    if cfg_path.exists() or (home / "data").exists():
        raise HomeExists(f"{home} already holds a coremail home; nothing was changed")
    return cfg_path


def _undo(home: Path, store) -> None:
    """A refused init leaves no data/ behind (so it can be run again)."""
    store.close()
    try:
        (home / "data").rmdir()
    except OSError:
        pass


def _template(hostname: str, domain: str, privileged: bool | None, database: str,
              blobs: str) -> tuple[str, dict, bool]:
    if privileged is None:
        privileged = can_bind_privileged()
    ports = PRIVILEGED if privileged else UNPRIVILEGED
    text = TEMPLATE.format(hostname=hostname, domain=domain, database=_toml_string(database),
                           blobs=_toml_string(blobs), **ports)
    return text, ports, privileged


def _make_dirs(home: Path, blobs: str) -> None:
    for sub in ("conf", "logs", "run", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(home / "data", 0o700)
    if blobs:
        Path(blobs).mkdir(parents=True, exist_ok=True)


def init_home(home: Path, domain: str, hostname: str | None = None,
              admin_password: str | None = None, privileged: bool | None = None,
              database: str = "", blobs: str = "") -> InitResult:
    """A new home; with `database` (PostgreSQL) the first node of a system
    that further nodes join (`join_home`), its message files in `blobs`."""
    home = Path(home)
    cfg_path = _prepare(home)
    try:
        domain = normalise_domain(domain)
    except AddressError as e:
        raise AccountError(f"bad domain {domain!r}: {e}") from None
    hostname = hostname or f"mail.{domain}"
    if admin_password is not None and not admin_password:
        raise AccountError("the admin password is empty")
    if admin_password is not None:
        check_password(admin_password)  # now: once data/ exists, init refuses to run again
    text, ports, privileged = _template(hostname, domain, privileged, database, blobs)
    import tomllib
    settings = build_settings(tomllib.loads(text))  # the template must always validate
    store = open_store(home, settings) if database else None
    if store is not None:
        try:
            store.migrate()
            if store.list_domains():
                raise JoinError("that database already holds a coremail system: add this "
                                "node with `coremail init --join`")
        except JoinError:
            _undo(home, store)
            raise
        except Exception as e:  # noqa: BLE001 - the operator needs the reason in one line
            _undo(home, store)
            raise JoinError(f"cannot use the database: {e}") from None
    _make_dirs(home, blobs)
    make_self_signed(home / "conf" / "tls", hostname)
    ensure_keys(home, domain)
    ensure_secret(home)
    store = store or open_store(home, settings)
    try:
        store.migrate()
        accounts = Accounts(store, domain, settings.limits.default_quota)
        accounts.add_domain(domain)
        password = admin_password or generate_password()
        accounts.add_user(f"admin@{domain}", password, quota=0, name="Administrator", admin=True)
        for role in ("postmaster", "abuse"):  # RFC 5321 4.5.1, RFC 2142
            accounts.add_alias(f"{role}@{domain}", f"admin@{domain}")
        if store.shared:
            store.set_setting("", PRIMARY_DOMAIN_KEY, domain)
            sharedconf.push(home, store)
    finally:
        store.close()
    cfg_path.write_text(text)  # last: its presence marks a finished init
    return InitResult(home, domain, hostname, f"admin@{domain}",
                      None if admin_password else password, dict(ports), privileged)


def join_home(home: Path, database: str, blobs: str, hostname: str,
              privileged: bool | None = None) -> InitResult:
    """A further node's home: the system's database and message files, the
    certificate, DKIM keys and SRS secret copied from the database
    (services.sharedconf), and its own hostname."""
    home = Path(home)
    cfg_path = _prepare(home)
    if not database.startswith("postgresql"):
        raise JoinError("--join takes the PostgreSQL URL of the first node's database "
                        "(postgresql+psycopg://USER:PW@HOST/DB)")
    if not blobs:
        raise JoinError("--blobs must name the message directory every node mounts")
    try:
        hostname = normalise_domain(hostname)
    except AddressError as e:
        raise JoinError(f"bad hostname {hostname!r}: {e}") from None
    import tomllib
    text, ports, privileged = _template(hostname, "example.test", privileged, database, blobs)
    store = open_store(home, build_settings(tomllib.loads(text)))
    joined = False
    try:
        try:
            store.migrate()
            domain = store.get_setting("", PRIMARY_DOMAIN_KEY) or next(
                (d.name for d in store.list_domains()), None)
            files = store.shared_files()
        except Exception as e:  # noqa: BLE001
            raise JoinError(f"cannot use the database: {e}") from None
        if domain is None or not files:
            raise JoinError("that database holds no coremail system yet: make the first "
                            "node with `coremail init --domain D --database URL --blobs DIR`")
        if not Path(blobs).is_dir():
            raise JoinError(f"{blobs} is not a directory: mount the shared message "
                            "directory first")
        text, ports, privileged = _template(hostname, domain, privileged, database, blobs)
        _make_dirs(home, "")
        sharedconf.pull(home, store)
        joined = True
    finally:
        if joined:
            store.close()
        else:
            _undo(home, store)
    cfg_path.write_text(text)
    return InitResult(home, domain, hostname, f"admin@{domain}", None, dict(ports), privileged)
