"""Alembic environment: runs on the connection the store hands over
(store.sql.engine.migrate), or on the URL in the config for the CLI."""
from alembic import context
from sqlalchemy import create_engine

from coremail.store.sql.schema import metadata

config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as conn:
            _migrate(conn)
    else:
        _migrate(conn)


def _migrate(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata,
                      render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
