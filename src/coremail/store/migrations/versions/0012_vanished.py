"""expunged UIDs with their modseq, for QRESYNC's VANISHED (RFC 7162)

`vanished` keeps, per folder, the UID ranges each removal took out and the
folder's modseq after it, so a client resynchronising from a modseq learns
what was expunged since. A row with lo = hi = 0 is a floor: history at or
below its modseq is no longer complete (trimmed, or from before this table),
and the answer falls back to every UID the folder no longer has.

Revision ID: 0012
Revises: 0010
"""
import time

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        'vanished',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('folder_id', sa.Integer(), sa.ForeignKey('folders.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('modseq', sa.BigInteger(), nullable=False),
        sa.Column('lo', sa.BigInteger(), nullable=False),
        sa.Column('hi', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        **KEEP_IDS,
    )
    op.create_index('ix_vanished_folder', 'vanished', ['folder_id', 'modseq'])
    # what was expunged before this revision was never recorded: a floor per folder
    op.execute(sa.text("INSERT INTO vanished (folder_id, modseq, lo, hi, at) "
                       "SELECT id, highestmodseq, 0, 0, :now FROM folders").bindparams(now=time.time()))


def downgrade() -> None:
    op.drop_index('ix_vanished_folder', 'vanished')
    op.drop_table('vanished')
