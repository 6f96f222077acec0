"""Dataset entries as the user gave them, and the manifest lines an import rejected.

``entries.manifest_line``: the Ground Truth line an entry was imported from, as given (ListDatasetEntries
answers it, our own fields beside it). Entries stored before, and entries that came from anywhere else
(uploads, folders, review answers), have NULL: their line is written from the entry's labels as before.

``rejected_lines``: a manifest line an import could not take, kept with its errors as Custom Labels keeps
it (ListDatasetEntries with HasErrors, DatasetStats.ErrorEntries) until a corrected line for the same
source-ref replaces it or the user deletes it; it never reaches training. Nothing existing is changed.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("manifest_line", sa.Text, nullable=True))
    op.create_table(
        "rejected_lines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source_ref", sa.Text, nullable=True),  # None when the line names none
        sa.Column("line", sa.Text, nullable=False),  # the text as given
        sa.Column("errors", sa.Text, nullable=False),  # JSON list of {"code", "message"}
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_rejected_lines_dataset", "rejected_lines", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_rejected_lines_dataset", table_name="rejected_lines")
    op.drop_table("rejected_lines")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("manifest_line")
