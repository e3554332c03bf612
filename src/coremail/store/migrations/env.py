"""Alembic environment: runs on the connection the store hands over
(store.sql.engine.migrate), or on the URL in the config for the CLI.

On SQLite, foreign keys are off while migrations run: a migration that
rebuilds a parent table (batch mode) drops it, and with foreign keys on that
DROP would cascade-delete every child row. They are checked before commit."""
from contextlib import contextmanager

from alembic import context

from coremail.store.sql.engine import make_engine
from coremail.store.sql.schema import metadata

config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        try:
            with engine.connect() as conn:
                _migrate(conn)
        finally:
            engine.dispose()
    else:
        _migrate(conn)


def _migrate(conn) -> None:
    sqlite = conn.dialect.name == "sqlite"
    # SQLite DDL is transactional (the engine issues BEGIN itself): one
    # transaction for the whole upgrade, so a failed check rolls it all back.
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=sqlite,
                      **({"transactional_ddl": True} if sqlite else {}))
    with _sqlite_foreign_keys_off(conn) if sqlite else _nothing():
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                _check_foreign_keys(conn)


@contextmanager
def _nothing():
    yield


@contextmanager
def _sqlite_foreign_keys_off(conn):
    # The pragma is a no-op inside a transaction: set it on the DBAPI
    # connection before Alembic begins one, and make sure it took.
    if conn.in_transaction():
        raise RuntimeError("migrations need a connection outside a transaction on SQLite")
    raw = conn.connection.dbapi_connection
    _pragma(raw, "PRAGMA foreign_keys=OFF")
    try:
        if _pragma(raw, "PRAGMA foreign_keys") != [(0,)]:
            raise RuntimeError("could not turn SQLite foreign keys off for the migration")
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        _pragma(raw, "PRAGMA foreign_keys=ON")


def _pragma(raw, sql: str) -> list:
    cur = raw.cursor()
    try:
        cur.execute(sql)
        return cur.fetchall()
    finally:
        cur.close()


def _check_foreign_keys(conn) -> None:
    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if bad:
        shown = ", ".join(f"{r[0]} rowid {r[1]} -> {r[2]}" for r in bad[:10])
        raise RuntimeError(f"migration left {len(bad)} row(s) with a dangling foreign key "
                           f"(rolled back): {shown}")


run()
