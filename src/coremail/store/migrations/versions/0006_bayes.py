"""the intelligent score: token counts, message totals, what was learnt

`bayes_tokens` holds, per model (owner 0: the global model, else a user id)
and hashed token, how many spam and ham messages it was seen in; clustered
on (owner, token) (SQLite: WITHOUT ROWID) so a message's few hundred clues
are a few hundred B-tree probes. `bayes_totals` counts the messages trained
per model; `bayes_learnt` remembers each trained message's digest and class
so nothing is learnt twice and a move out of Junk can undo a spam training.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bayes_tokens',
        sa.Column('owner', sa.Integer(), primary_key=True),
        sa.Column('token', sa.BigInteger(), primary_key=True),
        sa.Column('spam', sa.Integer(), nullable=False),
        sa.Column('ham', sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        'bayes_totals',
        sa.Column('owner', sa.Integer(), primary_key=True),
        sa.Column('spam', sa.Integer(), nullable=False),
        sa.Column('ham', sa.Integer(), nullable=False),
    )
    op.create_table(
        'bayes_learnt',
        sa.Column('owner', sa.Integer(), primary_key=True),
        sa.Column('digest', sa.String(32), primary_key=True),
        sa.Column('spam', sa.Boolean(), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table('bayes_learnt')
    op.drop_table('bayes_totals')
    op.drop_table('bayes_tokens')
