"""filter rules (allow/block lists, keyword and header rules) and the
fingerprint counter

`filter_rules` holds what `coremail filter add` makes: a kind (ip, sender,
keyword, header), a pattern, an action (reject, junk, allow, score), the
points of a score rule, the user it belongs to ("" for the whole server) and
the hits counted so far. `fingerprints` counts similar messages per
fingerprint band key and time slot, shared by every SMTP worker and node.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'filter_rules',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('pattern', sa.Text(), nullable=False),
        sa.Column('action', sa.String(16), nullable=False),
        sa.Column('points', sa.Float(), nullable=False, server_default='0'),
        sa.Column('user', sa.String(320), nullable=False, server_default=''),
        sa.Column('note', sa.Text(), nullable=False, server_default=''),
        sa.Column('hits', sa.BigInteger(), nullable=False, server_default='0'),
        sa.Column('last_hit', sa.Float(), nullable=True),
        sa.Column('created', sa.Float(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'fingerprints',
        sa.Column('key', sa.String(32), primary_key=True),
        sa.Column('slot', sa.BigInteger(), primary_key=True),
        sa.Column('count', sa.Integer(), nullable=False),
    )
    op.create_index('ix_fingerprints_slot', 'fingerprints', ['slot'])


def downgrade() -> None:
    op.drop_index('ix_fingerprints_slot', 'fingerprints')
    op.drop_table('fingerprints')
    op.drop_table('filter_rules')
