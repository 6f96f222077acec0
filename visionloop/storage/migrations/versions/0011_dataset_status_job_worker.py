"""Interrupted work is visible: a dataset's creation status (CREATING until the entries of a
CreateDataset are committed; FAILED when it failed or a server stopped while it ran) and the worker
process that claimed a job (so that the server fails the jobs of a worker that died). Datasets stored
before are READY.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="READY"))
        batch.add_column(sa.Column("status_message", sa.Text, nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("worker", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("worker")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("status_message")
        batch.drop_column("status")
