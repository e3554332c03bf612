"""Table definitions (SQLAlchemy Core). Portable types only: the same tables
serve SQLite and PostgreSQL. Changes go through an Alembic migration in
store/migrations/versions as well."""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, String, Table, Text, UniqueConstraint)

metadata = MetaData()

# Ids of users, folders and messages are never handed out twice: web links,
# traces, caches and POP3 UIDLs key on them. PostgreSQL sequences never go
# back; SQLite needs AUTOINCREMENT, else it reuses the newest deleted id.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

domains = Table(
    "domains", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created", Float, nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(320), nullable=False, unique=True),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False),
    Column("quota", BigInteger, nullable=False, default=0),
    Column("used_bytes", BigInteger, nullable=False, default=0),
    Column("used_messages", Integer, nullable=False, default=0),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("admin", Boolean, nullable=False, default=False),
    Column("created", Float, nullable=False),
    **NEVER_REUSE_IDS,
)

aliases = Table(
    "aliases", metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(320), nullable=False),
    Column("target", String(320), nullable=False),
    UniqueConstraint("address", "target", name="uq_alias_target"),
    Index("ix_aliases_address", "address"),
)

forwards = Table(
    "forwards", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("target", String(320), nullable=False),
    Column("keep", Boolean, nullable=False, default=False),
)

folders = Table(
    "folders", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(1000), nullable=False),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False, default=1),
    Column("highestmodseq", BigInteger, nullable=False, default=1),
    Column("special_use", String(32), nullable=True),
    # the highest UID a session has been shown as \Recent (claimed on SELECT)
    Column("recent_uid", BigInteger, nullable=False, default=0, server_default="0"),
    UniqueConstraint("user_id", "name", name="uq_folder_name"),
    **NEVER_REUSE_IDS,
)

# RFC 3501 6.3.6: subscriptions are names, not folders: a name may be
# subscribed while no folder has it (LIST shows it \NonExistent).
subscriptions = Table(
    "subscriptions", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(1000), primary_key=True),
)

messages = Table(
    "messages", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("blob_id", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("internaldate", Float, nullable=False),
    Column("flags", Text, nullable=False, default=""),
    Column("modseq", BigInteger, nullable=False, default=1),
    Column("meta", Text, nullable=True),
    UniqueConstraint("folder_id", "uid", name="uq_message_uid"),
    Index("ix_messages_blob", "blob_id"),
    Index("ix_messages_user", "user_id"),
    Index("ix_messages_counts", "folder_id", "flags", "size"),   # folder_counts, index only
    **NEVER_REUSE_IDS,
)

# A message removed from a folder (expunge, move, delete): its blob stays
# until no live session's view of that folder predates `modseq` (RFC 2180
# 4.1). No foreign key: the folder may be gone by then.
removed = Table(
    "removed", metadata,
    Column("id", Integer, primary_key=True),
    Column("blob_id", String(32), nullable=False),
    Column("folder_id", Integer, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_removed_blob", "blob_id"),
    Index("ix_removed_at", "at"),
)

# QRESYNC (RFC 7162): the UID ranges [lo, hi] each removal took out of a
# folder, with the folder's modseq after it. lo = hi = 0 is a floor: below
# its modseq the record is incomplete (trimmed by trim_vanished, or older
# than this table).
vanished = Table(
    "vanished", metadata,
    Column("id", Integer, primary_key=True),
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("lo", BigInteger, nullable=False),
    Column("hi", BigInteger, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_vanished_folder", "folder_id", "modseq"),
    **NEVER_REUSE_IDS,
)

# Per process (owner) and folder: the lowest modseq its live sessions are
# synchronised to, valid until lease_until (renewed while the process lives).
views = Table(
    "views", metadata,
    Column("owner", String(64), primary_key=True),
    Column("folder_id", Integer, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
    Column("lease_until", Float, nullable=False),
)

# Administrative changes (the webadmin's audit log): who, from where, when,
# what, and the value before and after.
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(1000), nullable=False),
    Column("old", Text, nullable=False),
    Column("new", Text, nullable=False),
    Index("ix_audit_at", "at"),
)

settings = Table(
    "settings", metadata,
    Column("scope", String(320), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

queue = Table(
    "queue", metadata,
    Column("id", String(32), primary_key=True),
    Column("blob_id", String(32), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("kind", String(16), nullable=False, default="out"),
    Column("size", BigInteger, nullable=False, default=0),
    Column("created", Float, nullable=False),
    Column("next_attempt", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    # A claim by one deliveragent (owner "host:pid:token") until lease_until:
    # no second agent takes the entry while the first may be sending it.
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Index("ix_queue_next", "next_attempt"),
    Index("ix_queue_blob", "blob_id"),
)

queue_recipients = Table(
    "queue_recipients", metadata,
    Column("queue_id", String(32), ForeignKey("queue.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("status", String(16), nullable=False, default="pending"),
    Column("last_error", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
)

# `coremail filter` rules: user "" is the whole server, else that user's own.
filter_rules = Table(
    "filter_rules", metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),       # ip, sender, keyword, header
    Column("pattern", Text, nullable=False),
    Column("action", String(16), nullable=False),     # reject, junk, allow, score
    Column("points", Float, nullable=False, default=0.0),
    Column("user", String(320), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("hits", BigInteger, nullable=False, default=0),
    Column("last_hit", Float, nullable=True),
    Column("created", Float, nullable=False),
    **NEVER_REUSE_IDS,
)

# Similar-message counts per fingerprint band key and time slot.
fingerprints = Table(
    "fingerprints", metadata,
    Column("key", String(32), primary_key=True),
    Column("slot", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
    Index("ix_fingerprints_slot", "slot"),
)

# The intelligent score (store/sql/bayes.py). owner 0 is the global model,
# else a user id; tokens are 64-bit hashes; clustered on the key (SQLite
# WITHOUT ROWID) so scoring a message is a few hundred B-tree probes.
bayes_tokens = Table(
    "bayes_tokens", metadata,
    Column("owner", Integer, primary_key=True),
    Column("token", BigInteger, primary_key=True),
    Column("spam", Integer, nullable=False),
    Column("ham", Integer, nullable=False),
    Column("seen", Integer, nullable=False, server_default="0"),   # day last trained or scored
    sqlite_with_rowid=False,
)

bayes_totals = Table(
    "bayes_totals", metadata,
    Column("owner", Integer, primary_key=True),
    Column("spam", Integer, nullable=False),
    Column("ham", Integer, nullable=False),
)

bayes_learnt = Table(
    "bayes_learnt", metadata,
    Column("owner", Integer, primary_key=True),
    Column("digest", String(32), primary_key=True),
    Column("spam", Boolean, nullable=False),
    Column("at", Float, nullable=False),
    sqlite_with_rowid=False,
)

# The message trace (obs.trace): one row per event, and the keys (queue id,
# Message-ID, addresses, lower-cased) it can be found by. Events are kept in
# the order of their message (primary key qid, at, seq; in SQLite a table
# WITHOUT ROWID, so a message's events share a page) and the key index
# covers the queue id: a lookup reads a few index pages, then one page or
# two per message found.
trace_events = Table(
    "trace_events", metadata,
    Column("qid", String(48), primary_key=True),
    Column("at", Float, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("service", String(16), nullable=False, default=""),
    Column("message_id", String(255), nullable=False, default=""),
    Column("sender", String(320), nullable=False, default=""),
    Column("recipients", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("details", Text, nullable=False, default="{}"),
    Index("ix_trace_events_at", "at"),
    sqlite_with_rowid=False,
)

trace_keys = Table(
    "trace_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(320), nullable=False),
    Column("qid", String(48), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_trace_keys_key", "key", "at", "qid"),
    Index("ix_trace_keys_at", "at"),
)

# What several nodes share through the database (store/sql/nodes.py):
# named locks with a lease (a POP3 maildrop), failed logins per client
# address (the login throttle), the nodes with their heartbeat and service
# states, and the files every node needs alike (certificate, DKIM keys, SRS
# secret), copied to each node's conf/, and the web sessions (a browser's
# next request may reach another node).
leases = Table(
    "leases", metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("until", Float, nullable=False),
    Index("ix_leases_owner", "owner"),
)

auth_failures = Table(
    "auth_failures", metadata,
    Column("id", Integer, primary_key=True),
    Column("ip", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_auth_failures_ip", "ip", "at"),
    Index("ix_auth_failures_at", "at"),
)

nodes = Table(
    "nodes", metadata,
    Column("hostname", String(255), primary_key=True),
    Column("started", Float, nullable=False),
    Column("heartbeat", Float, nullable=False),
    Column("services", Text, nullable=False, default="[]"),
)

shared_files = Table(
    "shared_files", metadata,
    Column("name", String(255), primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("updated", Float, nullable=False),
)

web_sessions = Table(
    "web_sessions", metadata,
    Column("key", String(64), primary_key=True),    # SHA-256 of the cookie's token
    Column("user_id", Integer, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("expires", Float, nullable=False),
    Index("ix_web_sessions_expires", "expires"),
)
