"""Workflow runs: runs and their steps (core.runs), schedules of the periodic checks (core.schedules),
the deployment log behind each project's serving version (core.deployments), and a payload and result
on jobs (the champion/challenger comparison job).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _project_id() -> sa.Column[int]:
    return sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "workflow_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_id(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("current_step", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("resumed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_workflow_runs_project", "workflow_runs", ["project_id", "id"])
    op.create_index("ix_workflow_runs_status", "workflow_runs", ["status", "id"])
    op.create_table(
        "workflow_steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id", sa.Integer, sa.ForeignKey("workflow_runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("run_id", "seq", name="uq_workflow_steps_run_seq"),
    )
    op.create_table(
        "workflow_schedules",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_id(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("interval_minutes", sa.Float, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("next_run_at", sa.DateTime, nullable=True),
        sa.Column("last_run_at", sa.DateTime, nullable=True),
        sa.Column("last_result", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project_id", "kind", name="uq_workflow_schedules_project_kind"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_id(),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("model_versions.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("version_name", sa.String(255), nullable=False),
        sa.Column("previous_name", sa.String(255), nullable=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("deployed_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_deployments_project", "deployments", ["project_id", "id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("params", sa.Text, nullable=True))
        batch.add_column(sa.Column("result", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("result")
        batch.drop_column("params")
    for table in ("deployments", "workflow_schedules", "workflow_steps", "workflow_runs"):
        op.drop_table(table)
