"""The detection log (detections, detection_labels) and the inboxes' ledger (inbox_items): core.detections,
core.inbox; the tables are declared in storage/detections.py.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.Text, nullable=True),
        sa.Column("detected_at", sa.DateTime, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("top_label", sa.Text, nullable=True),
        sa.Column("top_confidence", sa.Float, nullable=True),
        sa.Column("probabilities", sa.Text, nullable=False),
    )
    op.create_index("ix_detections_project_id", "detections", ["project_id", "id"])
    op.create_index("ix_detections_project_time", "detections", ["project_id", "detected_at"])
    op.create_index("ix_detections_ref", "detections", ["ref"])
    op.create_table(
        "detection_labels",
        sa.Column(
            "detection_id",
            sa.Integer,
            sa.ForeignKey("detections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("label", sa.String(256), primary_key=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_detection_labels_project_label", "detection_labels", ["project_id", "label", "detection_id"]
    )
    op.create_table(
        "inbox_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("moved_to", sa.Text, nullable=True),
        sa.Column("open_key", sa.Text, nullable=True),
        sa.UniqueConstraint("project_id", "kind", "open_key", name="uq_inbox_items_open_key"),
    )
    op.create_index("ix_inbox_items_project", "inbox_items", ["project_id", "id"])


def downgrade() -> None:
    for table in ("inbox_items", "detection_labels", "detections"):
        op.drop_table(table)
