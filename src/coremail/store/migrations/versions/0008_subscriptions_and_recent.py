"""subscriptions as their own list of names; the per-folder \\Recent mark

RFC 3501 6.3.6: a subscription is a name, not a property of a folder: it may
name a folder that does not exist (yet, or any more), and CREATE does not
subscribe. The folders' `subscribed` column becomes rows of `subscriptions`.
`folders.recent_uid` is the highest UID some session has already been shown
as \\Recent; a session SELECTing the folder claims the UIDs above it
(compare-and-set, so one session among all processes gets each message as
recent).

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        'subscriptions',
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('name', sa.String(1000), primary_key=True),
    )
    op.execute("INSERT INTO subscriptions (user_id, name) "
               "SELECT user_id, name FROM folders WHERE subscribed")
    # SQLite rebuilds the table: keep 0003's AUTOINCREMENT (env.py has foreign
    # keys off meanwhile, so the messages of the folders stay)
    with op.batch_alter_table('folders', table_kwargs=KEEP_IDS) as b:
        b.drop_column('subscribed')
        b.add_column(sa.Column('recent_uid', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('folders', table_kwargs=KEEP_IDS) as b:
        b.drop_column('recent_uid')
        b.add_column(sa.Column('subscribed', sa.Boolean(), nullable=False,
                               server_default=sa.true()))
    op.execute("UPDATE folders SET subscribed = (EXISTS (SELECT 1 FROM subscriptions s "
               "WHERE s.user_id = folders.user_id AND s.name = folders.name))")
    op.drop_table('subscriptions')
