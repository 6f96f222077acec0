"""Human review: flow definitions, human loops, and the reviewers' leases and answers (core.review).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_flows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("arn", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),  # JSON of core.review.FlowSettings
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "human_loops",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column(
            "flow_id", sa.Integer, sa.ForeignKey("review_flows.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("source_ref", sa.Text, nullable=False),
        sa.Column("input_content", sa.Text, nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("answers_needed", sa.Integer, nullable=False),
        sa.Column("predictions", sa.Text, nullable=False),  # JSON [{label, confidence}]
        sa.Column("model_answer", sa.Text, nullable=True),
        sa.Column("margin", sa.Float, nullable=True),
        sa.Column("model_version", sa.Text, nullable=True),
        sa.Column("detection_ref", sa.Text, nullable=True),
        sa.Column("data_attributes", sa.Text, nullable=False),  # JSON list
        sa.Column("failure_code", sa.String(32), nullable=True),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("completed_at", sa.DateTime, nullable=True),
        sa.Column("human_answer", sa.Text, nullable=True),
        sa.Column("agrees", sa.Boolean, nullable=True),
        sa.Column("disagreement", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("result", sa.String(32), nullable=True),
        sa.Column("entry_id", sa.Integer, nullable=True),  # no foreign key: the entry may be deleted later
        sa.Column("output_uri", sa.Text, nullable=True),
        sa.Column(
            "open_hash", sa.String(64), nullable=True
        ),  # content_hash while InProgress/Stopping, else NULL
        sa.UniqueConstraint("project_id", "open_hash", name="uq_human_loops_open_image"),
    )
    op.create_table(
        "review_assignments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("loop_id", sa.Integer, sa.ForeignKey("human_loops.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),  # leased | answered | skipped
        sa.Column("leased_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("label", sa.Text, nullable=True),  # NULL: none of the above
        sa.Column("boxes", sa.Text, nullable=False),  # JSON list of boxes (ratios)
        sa.Column("submitted_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("loop_id", "reviewer", name="uq_review_assignments_loop_reviewer"),
    )
    op.create_index("ix_human_loops_flow_created", "human_loops", ["flow_id", "created_at"])
    op.create_index("ix_human_loops_status_expires", "human_loops", ["status", "expires_at"])
    op.create_index("ix_review_assignments_reviewer", "review_assignments", ["reviewer", "state"])
    op.create_index("ix_review_assignments_submitted", "review_assignments", ["state", "submitted_at"])


def downgrade() -> None:
    for table in ("review_assignments", "human_loops", "review_flows"):
        op.drop_table(table)
