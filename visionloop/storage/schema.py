"""Table definitions (SQLAlchemy Core). Migrations in storage/migrations create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("task", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(8), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("project_id", "type", name="uq_datasets_project_type"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("format", String(8), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("labels", Text, nullable=False),  # JSON list of image-level labels
    Column("boxes", Text, nullable=False),  # JSON list of {label, left, top, width, height} ratios
    Column("source", String(16), nullable=False),
    Column("review_ref", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("dataset_id", "content_hash", name="uq_entries_dataset_hash"),
)

# every label an entry carries (image-level and box labels), for filtering by label in SQL
entry_labels = Table(
    "entry_labels",
    metadata,
    Column("entry_id", Integer, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("label", String(256), primary_key=True),
    Index("ix_entry_labels_label", "label"),
)

labels = Table(
    "labels",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(256), primary_key=True),
)

splits = Table(
    "splits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("test_fraction", Float, nullable=False),
    Column("test_hashes", Text, nullable=False),  # JSON list
    Column("train_count", Integer, nullable=False),
    Column("test_count", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("backbone", String(255), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("snapshot_id", String(64), nullable=False),
    Column("training_ended_at", DateTime, nullable=True),
    Column("f1", Float, nullable=True),
    Column("thresholds", Text, nullable=False),  # JSON {label: 0..1}
    Column("artifact_key", Text, nullable=True),
    Column("artifact_checksum", String(64), nullable=True),
    Column("evaluation", Text, nullable=True),  # JSON
    Column("params", Text, nullable=False),  # JSON
    Column("training_seconds", Float, nullable=True),
    # serving (migration 0003)
    Column("min_inference_units", Integer, nullable=True),
    Column("max_inference_units", Integer, nullable=True),
    Column("inference_units", Integer, nullable=False, server_default="0"),
    Column("started_at", DateTime, nullable=True),
    Column("stopped_at", DateTime, nullable=True),
    Column("last_used_at", DateTime, nullable=True),
    Column("load_seconds", Float, nullable=True),
    Column("idle_timeout_seconds", Float, nullable=True),
    Column("auto_start", Boolean, nullable=False, server_default=false()),
    Column("idle_stopped_at", DateTime, nullable=True),
    UniqueConstraint("project_id", "name", name="uq_versions_project_name"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False),
    Column("stage", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("eta_seconds", Float, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Index("ix_jobs_status", "status", "id"),
)
