"""removed messages keep their blobs while live sessions may show them

`removed` records each message taken out of a folder (blob, folder, the
folder's modseq after the removal); `views` holds, per process and folder,
the lowest modseq its live sessions are synchronised to. A blob is purged
only when no live view predates its removals (RFC 2180 4.1).

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'removed',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('blob_id', sa.String(32), nullable=False),
        sa.Column('folder_id', sa.Integer(), nullable=False),
        sa.Column('modseq', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
    )
    op.create_index('ix_removed_blob', 'removed', ['blob_id'])
    op.create_index('ix_removed_at', 'removed', ['at'])
    op.create_table(
        'views',
        sa.Column('owner', sa.String(64), primary_key=True),
        sa.Column('folder_id', sa.Integer(), primary_key=True),
        sa.Column('modseq', sa.BigInteger(), nullable=False),
        sa.Column('lease_until', sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('views')
    op.drop_index('ix_removed_at', 'removed')
    op.drop_index('ix_removed_blob', 'removed')
    op.drop_table('removed')
