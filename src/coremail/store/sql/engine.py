"""Engine set-up: SQLite in WAL mode with a busy timeout and IMMEDIATE write
transactions (so two writers never deadlock on a lock upgrade), or any other
SQLAlchemy URL (PostgreSQL) as given. Also runs the Alembic migrations."""
from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, poolclass=QueuePool, pool_size=4, max_overflow=8,
                           connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # durable before the 250
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class WriteLock:
    """One SQLite writer at a time across threads and processes, queued on a
    lock instead of SQLite's busy handler, which polls with sleeps of up to
    100 ms: under load two commit threads in each of two SMTP workers spent
    more time in those sleeps than in their transactions. A thread lock
    orders this process's writers; flock() on a file beside the database
    orders the processes and is released by the kernel if one is killed."""

    def __init__(self, path: Path):
        self.path = Path(str(path) + "-writelock")
        self._local = threading.Lock()
        self._fd = -1
        self._pid = 0

    def __enter__(self) -> None:
        self._local.acquire()
        try:
            if self._pid != os.getpid():   # a forked child opens its own description
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._local.release()
            raise

    def __exit__(self, *exc) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()


def write_lock(engine: Engine):
    """The WriteLock for an SQLite file database, else None (PostgreSQL
    queues writers itself)."""
    db = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not db or db == ":memory:":
        return None
    return WriteLock(Path(db))


def _alembic_config(url: str):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # The config is a ConfigParser: a literal % (URL-escaped password or
    # options) must be doubled or it reads as an interpolation.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# pg_advisory_lock key held around a PostgreSQL upgrade ("coremail" in ASCII).
MIGRATION_LOCK = 0x636F72656D61696C


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest revision (idempotent), or to `revision`
    (tests build old databases with it). On PostgreSQL several nodes may
    start at once: a session advisory lock lets one upgrade while the others
    wait, then find nothing left to do."""
    from alembic import command
    cfg = _alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            conn.commit()   # a session lock: it outlives this transaction
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        finally:
            if pg:
                if conn.in_transaction():
                    conn.rollback()
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
                conn.commit()
