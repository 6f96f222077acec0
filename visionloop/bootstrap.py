"""Composition root: the one place that picks adapters for the core's ports."""

from __future__ import annotations

from visionloop.core.ports import TrainingEngine
from visionloop.core.services import Services
from visionloop.imaging import PillowInspector
from visionloop.settings import Settings
from visionloop.storage import open_object_store, open_repository


def build_services(settings: Settings) -> Services:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    return Services(
        repo=open_repository(settings.resolved_database_url),
        store=open_object_store(settings.resolved_store_url),
        buckets=open_object_store(settings.resolved_buckets_url),
        inspector=PillowInspector(),
    )


def build_engine(settings: Settings) -> TrainingEngine:
    """The machine-learning engine (imported lazily: serving without training needs none of it)."""
    from visionloop.engines.classification import ClassificationEngine

    return ClassificationEngine(cache_dir=settings.resolved_cache_dir)
