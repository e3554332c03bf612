"""the audit log of administrative changes (webadmin, userutil, config)

One row per change: when, who (an address, or "shell"), from which IP,
what (action and target) and the value before and after.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('actor', sa.String(320), nullable=False),
        sa.Column('ip', sa.String(64), nullable=False),
        sa.Column('action', sa.String(64), nullable=False),
        sa.Column('target', sa.String(1000), nullable=False),
        sa.Column('old', sa.Text(), nullable=False),
        sa.Column('new', sa.Text(), nullable=False),
    )
    op.create_index('ix_audit_at', 'audit', ['at'])


def downgrade() -> None:
    op.drop_index('ix_audit_at', 'audit')
    op.drop_table('audit')
