"""Reviewer accounts (argon2 password hashes) and their sign-in sessions.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("password_changed_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "reviewer_sessions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column(
            "reviewer_id", sa.Integer, sa.ForeignKey("reviewers.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_reviewer_sessions_reviewer", "reviewer_sessions", ["reviewer_id"])


def downgrade() -> None:
    op.drop_index("ix_reviewer_sessions_reviewer", "reviewer_sessions")
    op.drop_table("reviewer_sessions")
    op.drop_table("reviewers")
