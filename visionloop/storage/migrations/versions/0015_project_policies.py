"""Project policies (project_policies) and where a copied model version came from (version_copies):
core.policies, core.copies, storage/policies.py.

``project_policies``: a project's resource policies (PutProjectPolicy), each a JSON document kept as the
user wrote it, with a revision id that changes on every update; at most 5 a project. They decide which
copies of the project's model versions into other projects are allowed (core/policies.py).

``version_copies``: a model version made by CopyProjectVersion: the ARN of the version it was copied
from (DescribeProjectVersions' SourceProjectVersionArn). Versions that were trained have no row.
Nothing existing is changed.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("revision_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_project_policies_project_name"),
    )
    op.create_table(
        "version_copies",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("source_arn", sa.Text, nullable=False),
        sa.Column("copied_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("version_copies", "project_policies"):
        op.drop_table(table)
