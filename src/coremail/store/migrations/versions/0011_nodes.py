"""several nodes: leases, failed logins, nodes, shared files; folder change
notifications on PostgreSQL

`leases` are named locks with an expiry (the POP3 maildrop lock between
nodes), `auth_failures` the login throttle's failures per client address,
`nodes` each node's heartbeat and service states (`coremail status --all`),
`shared_files` the certificate, DKIM keys and SRS secret every node copies,
`web_sessions` the web sign-ins (any node may get a browser's next request).
On PostgreSQL a trigger on `folders` sends NOTIFY coremail_folders with the
folder id whenever its modseq or uidnext moves, so IMAP IDLE on any node
wakes at once instead of polling.

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION coremail_folder_changed() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('coremail_folders', NEW.id::text);
  RETURN NULL;
END $$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER folders_changed AFTER UPDATE OF highestmodseq, uidnext ON folders
FOR EACH ROW WHEN (OLD.highestmodseq IS DISTINCT FROM NEW.highestmodseq
                   OR OLD.uidnext IS DISTINCT FROM NEW.uidnext)
EXECUTE FUNCTION coremail_folder_changed()
"""


def upgrade() -> None:
    op.create_table(
        'leases',
        sa.Column('name', sa.String(200), primary_key=True),
        sa.Column('owner', sa.String(200), nullable=False),
        sa.Column('until', sa.Float(), nullable=False),
    )
    op.create_index('ix_leases_owner', 'leases', ['owner'])
    op.create_table(
        'auth_failures',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('ip', sa.String(64), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
    )
    op.create_index('ix_auth_failures_ip', 'auth_failures', ['ip', 'at'])
    op.create_index('ix_auth_failures_at', 'auth_failures', ['at'])
    op.create_table(
        'nodes',
        sa.Column('hostname', sa.String(255), primary_key=True),
        sa.Column('started', sa.Float(), nullable=False),
        sa.Column('heartbeat', sa.Float(), nullable=False),
        sa.Column('services', sa.Text(), nullable=False),
    )
    op.create_table(
        'shared_files',
        sa.Column('name', sa.String(255), primary_key=True),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('updated', sa.Float(), nullable=False),
    )
    op.create_table(
        'web_sessions',
        sa.Column('key', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('csrf', sa.String(64), nullable=False),
        sa.Column('expires', sa.Float(), nullable=False),
    )
    op.create_index('ix_web_sessions_expires', 'web_sessions', ['expires'])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS folders_changed ON folders")
        op.execute("DROP FUNCTION IF EXISTS coremail_folder_changed()")
    op.drop_table('web_sessions')
    op.drop_table('shared_files')
    op.drop_table('nodes')
    op.drop_table('auth_failures')
    op.drop_table('leases')
