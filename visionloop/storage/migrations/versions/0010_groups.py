"""Groups of similar photos: each entry's perceptual hash (dHash, computed at import) and its explicit
group, and what a recorded split knew of groups (how many, and its warnings). Entries stored before
have no hash: core.splitting.entry_phashes computes it from the stored image when a split needs it.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("phash", sa.String(16), nullable=True))
        batch.add_column(sa.Column("group_name", sa.String(255), nullable=True))
    with op.batch_alter_table("splits") as batch:
        batch.add_column(sa.Column("n_groups", sa.Integer, nullable=True))
        batch.add_column(sa.Column("warnings", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("splits") as batch:
        batch.drop_column("warnings")
        batch.drop_column("n_groups")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("group_name")
        batch.drop_column("phash")
