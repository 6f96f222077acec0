"""The metadata repository on SQLAlchemy Core: SQLite by default (WAL mode, one writer per process:
storage/connections.py), PostgreSQL by URL. The schema is created and upgraded by Alembic migrations;
the queries live in one store per aggregate, which SqlRepository combines."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from visionloop.storage.collections import CollectionStore
from visionloop.storage.connections import create_db_engine
from visionloop.storage.detections import DetectionStore
from visionloop.storage.events import EventStore
from visionloop.storage.flow_definitions import FlowDefinitionStore
from visionloop.storage.parameters import ParameterStore
from visionloop.storage.projects import ProjectStore
from visionloop.storage.review import ReviewStore
from visionloop.storage.versions import VersionStore
from visionloop.storage.workflow import WorkflowStore

MIGRATIONS = Path(__file__).with_name("migrations")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class SqlRepository(
    ProjectStore,
    VersionStore,
    WorkflowStore,
    ReviewStore,
    FlowDefinitionStore,
    DetectionStore,
    ParameterStore,
    EventStore,
    CollectionStore,
):
    """Implements core.ports.Repository: one store per aggregate (storage/projects.py, versions.py,
    workflow.py, review.py, detections.py, parameters.py, events.py, collections.py) on one engine,
    migrated on start."""

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        if auto_migrate:
            migrate(self.engine)

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()
