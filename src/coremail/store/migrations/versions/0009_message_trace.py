"""the message trace: events and the keys they are found by

`trace_events` holds what happened to each message (received, refused,
checks, delivered, queued, each delivery attempt, bounced, deleted);
`trace_keys` the queue id, Message-ID and addresses each one is found by.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'trace_events',
        sa.Column('qid', sa.String(48), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('service', sa.String(16), nullable=False),
        sa.Column('message_id', sa.String(255), nullable=False),
        sa.Column('sender', sa.String(320), nullable=False),
        sa.Column('recipients', sa.Text(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('details', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('qid', 'at', 'seq'),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_trace_events_at', 'trace_events', ['at'])
    op.create_table(
        'trace_keys',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('key', sa.String(320), nullable=False),
        sa.Column('qid', sa.String(48), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
    )
    op.create_index('ix_trace_keys_key', 'trace_keys', ['key', 'at', 'qid'])
    op.create_index('ix_trace_keys_at', 'trace_keys', ['at'])


def downgrade() -> None:
    op.drop_index('ix_trace_keys_at', 'trace_keys')
    op.drop_index('ix_trace_keys_key', 'trace_keys')
    op.drop_table('trace_keys')
    op.drop_index('ix_trace_events_at', 'trace_events')
    op.drop_table('trace_events')
