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
    Column("status", String(16), nullable=False, server_default="READY"),  # DatasetStatus (0011)
    Column("status_message", Text, nullable=True),
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
    Column("phash", String(16), nullable=True),  # dHash, 16 hex chars; None before migration 0010
    Column("group_name", String(255), nullable=True),  # explicit group of similar photos
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
    Column("n_groups", Integer, nullable=True),  # None: recorded before groups
    Column("warnings", Text, nullable=True),  # JSON list
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
    Column("params", Text, nullable=True),  # JSON (migration 0008)
    Column("result", Text, nullable=True),  # JSON (migration 0008)
    Column("worker", String(255), nullable=True),  # "host:pid" of the claiming worker (0011)
    Index("ix_jobs_status", "status", "id"),
)

# --- human review (migration 0005): core.review -------------------------------------------------------

review_flows = Table(
    "review_flows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("arn", Text, nullable=False),
    Column("settings", Text, nullable=False),  # JSON of core.review.FlowSettings
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

human_loops = Table(
    "human_loops",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("flow_id", Integer, ForeignKey("review_flows.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("format", String(8), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("input_content", Text, nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("answers_needed", Integer, nullable=False),
    Column("predictions", Text, nullable=False),  # JSON [{label, confidence}]
    Column("model_answer", Text, nullable=True),
    Column("margin", Float, nullable=True),
    Column("model_version", Text, nullable=True),
    Column("detection_ref", Text, nullable=True),
    Column("data_attributes", Text, nullable=False),  # JSON list
    Column("failure_code", String(32), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("completed_at", DateTime, nullable=True),
    Column("human_answer", Text, nullable=True),
    Column("agrees", Boolean, nullable=True),
    Column("disagreement", Boolean, nullable=False, server_default=false()),
    Column("result", String(32), nullable=True),
    Column("entry_id", Integer, nullable=True),  # no foreign key: the entry may be deleted later
    Column("output_uri", Text, nullable=True),
    Column("open_hash", String(64), nullable=True),  # content_hash while InProgress/Stopping, else NULL
    UniqueConstraint("project_id", "open_hash", name="uq_human_loops_open_image"),
    Index("ix_human_loops_flow_created", "flow_id", "created_at"),
    Index("ix_human_loops_status_expires", "status", "expires_at"),
)

# one row per (loop, reviewer): a lease, then an answer (or a skip)
review_assignments = Table(
    "review_assignments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("loop_id", Integer, ForeignKey("human_loops.id", ondelete="CASCADE"), nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("state", String(16), nullable=False),  # leased | answered | skipped
    Column("leased_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("label", Text, nullable=True),  # NULL: none of the above
    Column("boxes", Text, nullable=False),  # JSON list of boxes (ratios)
    Column("submitted_at", DateTime, nullable=True),
    UniqueConstraint("loop_id", "reviewer", name="uq_review_assignments_loop_reviewer"),
    Index("ix_review_assignments_reviewer", "reviewer", "state"),
    Index("ix_review_assignments_submitted", "state", "submitted_at"),
)
