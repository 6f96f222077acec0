"""Flow definitions created over the SageMaker API (CreateFlowDefinition): the request as given, kept beside
the review flow it became (review_flows), so that DescribeFlowDefinition answers what the user gave for
what the flow's settings cannot hold (request source, activation conditions, work team, task UI, role,
tags, ...). A flow created otherwise (the native API, a project's default flow) has no row. The row goes
with its flow. Nothing existing is changed.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_definitions",
        sa.Column(
            "flow_id",
            sa.Integer,
            sa.ForeignKey("review_flows.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("definition", sa.Text, nullable=False),  # JSON: the CreateFlowDefinition request
    )


def downgrade() -> None:
    op.drop_table("flow_definitions")
