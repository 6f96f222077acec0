"""The ports a use case works with, bundled. bootstrap.build_services() fills it with adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

from visionloop.core.ports import (
    Clock,
    ImageInspector,
    ObjectStore,
    Repository,
    SceneClusterer,
    SystemClock,
)
from visionloop.core.records.events import EventBus
from visionloop.core.records.policies import PolicyRepository


@dataclass
class Services:
    repo: Repository
    store: ObjectStore  # internal store: images by content hash, model artifacts
    buckets: ObjectStore  # user data in named buckets (S3Object / s3:// references)
    inspector: ImageInspector
    clock: Clock = field(default_factory=SystemClock)
    bus: EventBus = field(default_factory=EventBus)  # in-process subscribers of core.events.publish
    scenes: SceneClusterer | None = None  # splits hold out whole scenes when set (engines.scenes)
    policies: PolicyRepository | None = None  # project policies and copy records (core.policies)

    def close(self) -> None:
        """Close the repository's connections (a process that built these services ends with it)."""
        self.repo.close()
