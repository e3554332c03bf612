"""ids never reused: AUTOINCREMENT on users, folders and messages (SQLite)

Without it SQLite hands the id of the newest deleted row to the next insert,
and web links, traces, caches and POP3 UIDLs key on these ids. SQLite cannot
add AUTOINCREMENT in place, so the three tables are rebuilt (rows, indexes
and constraints kept) and sqlite_sequence starts at each table's highest id.
PostgreSQL sequences never go back: nothing to do there.

The rebuild drops parent tables: env.py turns foreign keys off around the
migration on SQLite (else the DROP would cascade to the children) and checks
them before committing.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLES = ('users', 'folders', 'messages')


def _check_foreign_keys_off(bind) -> None:
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("0003 rebuilds tables with children: PRAGMA foreign_keys must be "
                           "OFF (the migration environment turns it off on SQLite)")


def _rebuild(bind, autoincrement: bool) -> None:
    _check_foreign_keys_off(bind)
    for name in TABLES:
        with op.batch_alter_table(name, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _rebuild(bind, True)
    for name in TABLES:
        top = bind.execute(sa.text(f"SELECT max(id) FROM {name}")).scalar()
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :n"), {"n": name})
        if top is not None:
            bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:n, :s)"),
                         {"n": name, "s": top})


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _rebuild(bind, False)
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name IN ('users', 'folders', "
                         "'messages')"))
