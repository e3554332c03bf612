"""the intelligent score's tokens carry the day they were last seen

`bayes_tokens.seen` is the day (days since the Unix epoch) a token was last
trained or met in a scored message, so expiry (Store.bayes_expire) can drop
the old rare ones and keep a model under its largest size. Rows from before
this revision count as seen on the day of the upgrade.

Revision ID: 0013
Revises: 0012
"""
import time

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    today = int(time.time() // 86400)
    op.add_column('bayes_tokens', sa.Column('seen', sa.Integer(), nullable=False,
                                            server_default=str(today)))


def downgrade() -> None:
    with op.batch_alter_table('bayes_tokens') as b:
        b.drop_column('seen')
