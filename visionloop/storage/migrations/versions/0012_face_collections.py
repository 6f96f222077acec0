"""Face collections (face_collections), the faces indexed into them with their identity vectors (faces)
and the users their faces are associated with (face_users): core.collections, storage/collections.py.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_collections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("face_model_version", sa.String(64), nullable=False),
        sa.Column("embedding_dim", sa.Integer, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sqlite_autoincrement=True,  # an id is never reused: a search index is cached by it
    )
    collection = sa.ForeignKey("face_collections.id", ondelete="CASCADE")
    op.create_table(
        "faces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, collection, nullable=False),
        sa.Column("face_id", sa.String(36), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("external_image_id", sa.String(255), nullable=True),
        sa.Column("box_left", sa.Float, nullable=False),
        sa.Column("box_top", sa.Float, nullable=False),
        sa.Column("box_width", sa.Float, nullable=False),
        sa.Column("box_height", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("collection_id", "face_id", name="uq_faces_collection_face"),
    )
    op.create_index("ix_faces_collection_user", "faces", ["collection_id", "user_id"])
    op.create_table(
        "face_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "collection_id",
            sa.Integer,
            sa.ForeignKey("face_collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("request_token", sa.String(64), nullable=True),
        sa.UniqueConstraint("collection_id", "user_id", name="uq_face_users_collection_user"),
    )


def downgrade() -> None:
    for table in ("face_users", "faces", "face_collections"):
        op.drop_table(table)
