"""Account roles: operator (the web console and the review pages) or reviewer (the review pages only).
Existing accounts stay reviewers.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviewers") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="reviewer"))


def downgrade() -> None:
    with op.batch_alter_table("reviewers") as batch:
        batch.drop_column("role")
