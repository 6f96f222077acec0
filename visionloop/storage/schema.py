"""Every table of the metadata database (SQLAlchemy Core), in one module: the stores query them, Alembic's
environment compares against them. The migrations in storage/migrations create and evolve them (the
source of DDL); tests/storage/test_sql.py checks that the migrated schema matches ``metadata``."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
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
    Column("manifest_line", Text, nullable=True),  # the Ground Truth line as given (0013); None: written
    UniqueConstraint("dataset_id", "content_hash", name="uq_entries_dataset_hash"),
)

# manifest lines an import rejected, kept with their errors until replaced or deleted (0013)
rejected_lines = Table(
    "rejected_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("source_ref", Text, nullable=True),
    Column("line", Text, nullable=False),
    Column("errors", Text, nullable=False),  # JSON list of {"code", "message"}
    Column("created_at", DateTime, nullable=False),
    Index("ix_rejected_lines_dataset", "dataset_id"),
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
    Column("predictions", Text, nullable=False),  # JSON [{label, confidence, box?: [l, t, w, h]}]
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

# --- reviewer accounts and their sessions (storage/accounts.py; migrations 0004, 0006) ------------

reviewers = Table(
    "reviewers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("password_changed_at", DateTime, nullable=False),
    Column("role", String(16), nullable=False, server_default="reviewer"),
)


reviewer_sessions = Table(
    "reviewer_sessions",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of the cookie's token
    Column("reviewer_id", Integer, ForeignKey("reviewers.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_reviewer_sessions_reviewer", "reviewer_id"),
)

# --- the detection log and the inboxes' ledger (storage/detections.py; migration 0009) ------------

detections = Table(
    "detections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("ref", String(32), nullable=False),
    Column("version", String(255), nullable=False),
    Column("content_hash", String(64), nullable=False),  # the image in the internal store's images bucket
    Column("source", String(16), nullable=False),
    Column("source_ref", Text, nullable=True),
    Column("detected_at", DateTime, nullable=False),
    Column("labels", Text, nullable=False),  # JSON [[label, confidence 0..100]] as returned
    Column("top_label", Text, nullable=True),
    Column("top_confidence", Float, nullable=True),  # 0..100
    Column("probabilities", Text, nullable=False),  # JSON [[label, 0..1]], best first
    Index("ix_detections_project_id", "project_id", "id"),
    Index("ix_detections_project_time", "project_id", "detected_at"),
    Index("ix_detections_ref", "ref"),
)


# one row per label a detection returned, for filtering by label and confidence in SQL
detection_labels = Table(
    "detection_labels",
    metadata,
    Column("detection_id", Integer, ForeignKey("detections.id", ondelete="CASCADE"), primary_key=True),
    Column("label", String(256), primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("confidence", Float, nullable=False),  # 0..100
    Index("ix_detection_labels_project_label", "project_id", "label", "detection_id"),
)


# what the inboxes took: one row per object taken, open (open_key set) until the object was moved away
inbox_items = Table(
    "inbox_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # detect | label
    Column("key", Text, nullable=False),  # the object's key in the workflow bucket
    Column("content_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # claimed | done | failed
    Column("claimed_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    Column("result", Text, nullable=True),  # JSON: what was done (result key, entry, detection ref …)
    Column("message", Text, nullable=True),
    Column("moved_to", Text, nullable=True),
    Column("open_key", Text, nullable=True),  # = key until the object was moved away, then NULL
    UniqueConstraint("project_id", "kind", "open_key", name="uq_inbox_items_open_key"),
    Index("ix_inbox_items_project", "project_id", "id"),
)

# --- events and notifications (storage/events.py) -------------------------------------------------

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("created_at", DateTime, nullable=False),
    Index("ix_events_project_id", "project_id", "id"),
    Index("ix_events_project_type", "project_id", "type", "id"),
    Index("ix_events_project_created", "project_id", "created_at"),
)


notification_channels = Table(
    "notification_channels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # webhook | email
    Column("target", Text, nullable=False),  # the URL, or the JSON list of e-mail addresses
    Column("secret", Text, nullable=True),  # webhook: the HMAC-SHA256 key
    Column("event_types", Text, nullable=False),  # JSON list of event type names
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_notification_channels_project_name"),
)


notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel_id", Integer, ForeignKey("notification_channels.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),  # pending: due then (also a worker's lease)
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    UniqueConstraint("channel_id", "event_id", name="uq_notification_deliveries_channel_event"),
    Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
)


notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),  # webhook: the HTTP status, when one came back
    Column("error", Text, nullable=True),
    Index("ix_notification_attempts_delivery", "delivery_id", "number"),
)

# --- project parameters, their history and workflow state (storage/parameters.py) -----------------

project_parameters = Table(
    "project_parameters",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", DateTime, nullable=False),
    Column("updated_by", String(128), nullable=False),
    PrimaryKeyConstraint("project_id", "key", name="pk_project_parameters"),
)


parameter_history = Table(
    "parameter_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("old_value", Text, nullable=False),  # JSON
    Column("new_value", Text, nullable=False),  # JSON
    Column("changed_by", String(128), nullable=False),
    Column("changed_at", DateTime, nullable=False),
    Index("ix_parameter_history_project", "project_id", "id"),
)


workflow_state = Table(
    "workflow_state",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", DateTime, nullable=False),
    PrimaryKeyConstraint("project_id", "key", name="pk_workflow_state"),
)

# --- workflow runs, steps, schedules and deployments (storage/workflow.py; migration 0008) --------

workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("current_step", String(32), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("input", Text, nullable=False),  # JSON
    Column("output", Text, nullable=False),  # JSON: the run's state, every step's output merged
    Column("resumed", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
    Column("ended_at", DateTime, nullable=True),
    Index("ix_workflow_runs_project", "project_id", "id"),
    Index("ix_workflow_runs_status", "status", "id"),
)


workflow_steps = Table(
    "workflow_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("workflow_runs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("name", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", Text, nullable=False),  # JSON
    Column("output", Text, nullable=False),  # JSON
    Column("error", Text, nullable=True),
    Column("started_at", DateTime, nullable=False),
    Column("ended_at", DateTime, nullable=True),
    UniqueConstraint("run_id", "seq", name="uq_workflow_steps_run_seq"),
)


workflow_schedules = Table(
    "workflow_schedules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("interval_minutes", Float, nullable=False),
    Column("params", Text, nullable=False),  # JSON: the watched parameters it was armed with
    Column("next_run_at", DateTime, nullable=True),
    Column("last_run_at", DateTime, nullable=True),
    Column("last_result", Text, nullable=True),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("project_id", "kind", name="uq_workflow_schedules_project_kind"),
)


deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True),
    Column("version_name", String(255), nullable=False),
    Column("previous_name", String(255), nullable=True),
    Column("run_id", Integer, nullable=True),  # no foreign key: the log outlives the runs
    Column("reason", String(32), nullable=False),
    Column("deployed_at", DateTime, nullable=False),
    Index("ix_deployments_project", "project_id", "id"),
)

# --- face collections, their faces and users (storage/collections.py; migration 0012) -------------

face_collections = Table(
    "face_collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("face_model_version", String(64), nullable=False),
    Column("embedding_dim", Integer, nullable=False),
    Column("tags", Text, nullable=False),  # JSON {key: value}
    Column("revision", Integer, nullable=False),  # bumped by every change of its faces
    sqlite_autoincrement=True,  # an id is never reused: a search index is cached by it
)


# one row per indexed face: its box, ids, user and identity vector (float32 bytes)
faces = Table(
    "faces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", Integer, ForeignKey("face_collections.id", ondelete="CASCADE"), nullable=False),
    Column("face_id", String(36), nullable=False),
    Column("image_id", String(36), nullable=False),
    Column("external_image_id", String(255), nullable=True),
    Column("box_left", Float, nullable=False),
    Column("box_top", Float, nullable=False),
    Column("box_width", Float, nullable=False),
    Column("box_height", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("user_id", String(128), nullable=True),
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("collection_id", "face_id", name="uq_faces_collection_face"),
    Index("ix_faces_collection_user", "collection_id", "user_id"),
)


face_users = Table(
    "face_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", Integer, ForeignKey("face_collections.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("request_token", String(64), nullable=True),  # CreateUser's ClientRequestToken: a retry succeeds
    UniqueConstraint("collection_id", "user_id", name="uq_face_users_collection_user"),
)


# --- SageMaker flow definitions (migration 0014): visionloop.sagemaker -------------------------------

flow_definitions = Table(
    "flow_definitions",
    metadata,
    Column("flow_id", Integer, ForeignKey("review_flows.id", ondelete="CASCADE"), primary_key=True),
    Column("definition", Text, nullable=False),  # JSON: the CreateFlowDefinition request, as given
)


# --- project policies and copied model versions (migration 0015): storage/policies.py -----------------

project_policies = Table(
    "project_policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("document", Text, nullable=False),  # the JSON policy document, as the user wrote it
    Column("revision_id", String(64), nullable=False),  # hex; new on every update
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_project_policies_project_name"),
)

# a model version made by CopyProjectVersion, and the version it was copied from
version_copies = Table(
    "version_copies",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("source_arn", Text, nullable=False),
    Column("copied_at", DateTime, nullable=False),
)
