"""Serving: inference units, start/stop times, start cost and the idle timeout of model versions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("min_inference_units", sa.Integer, {"nullable": True}),
    ("max_inference_units", sa.Integer, {"nullable": True}),
    ("inference_units", sa.Integer, {"nullable": False, "server_default": "0"}),
    ("started_at", sa.DateTime, {"nullable": True}),
    ("stopped_at", sa.DateTime, {"nullable": True}),
    ("last_used_at", sa.DateTime, {"nullable": True}),
    ("load_seconds", sa.Float, {"nullable": True}),
    ("idle_timeout_seconds", sa.Float, {"nullable": True}),
    ("auto_start", sa.Boolean, {"nullable": False, "server_default": sa.false()}),
    ("idle_stopped_at", sa.DateTime, {"nullable": True}),
)


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        for name, type_, options in _COLUMNS:
            batch.add_column(sa.Column(name, type_, **options))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        for name, _, _ in reversed(_COLUMNS):
            batch.drop_column(name)
