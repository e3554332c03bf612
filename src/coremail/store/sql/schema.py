"""Table definitions (SQLAlchemy Core). Portable types only: the same tables
serve SQLite and PostgreSQL. Changes go through an Alembic migration in
store/migrations/versions as well."""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer,
                        MetaData, String, Table, Text, UniqueConstraint)

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
    Column("subscribed", Boolean, nullable=False, default=True),
    UniqueConstraint("user_id", "name", name="uq_folder_name"),
    **NEVER_REUSE_IDS,
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

# Per process (owner) and folder: the lowest modseq its live sessions are
# synchronised to, valid until lease_until (renewed while the process lives).
views = Table(
    "views", metadata,
    Column("owner", String(64), primary_key=True),
    Column("folder_id", Integer, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
    Column("lease_until", Float, nullable=False),
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
