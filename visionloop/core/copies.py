"""Copying a trained model version into a project of this server (Rekognition's CopyProjectVersion).

The copy is a model version of its own: the artifact's files are copied in the internal store under a
key of the copy's (never shared, so deleting either version keeps the other's files), and the copy keeps
the source's evaluation, F1, thresholds, recipe and training snapshot (snapshots are content-addressed
and outlive versions). The source must hold a trained model; a copy into another project must be allowed
by the source project's policies (core.policies). A destination project with neither data nor versions
takes the source's task; any other must already have it, since a model answers only its own task.

The files are copied before the version exists, so a failed copy leaves no version behind; the version
then goes from TRAINING_IN_PROGRESS (the AWS API reports a copy's as COPYING_IN_PROGRESS) to
TRAINING_COMPLETED in two writes, and its source is recorded with it (a PolicyRepository)."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass

from visionloop.core import policies
from visionloop.core.datasets import adopt_task
from visionloop.core.entities import ModelVersion, Project, VersionStatus
from visionloop.core.project_policies import policy_repo
from visionloop.core.projects import get_project
from visionloop.core.services import Services
from visionloop.core.training import MODELS_BUCKET, READY_MESSAGE, get_version, load_artifact
from visionloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound

VERSION_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
#: the states of a version that holds a trained model (a serving failure keeps its artifact)
COPYABLE = (
    VersionStatus.TRAINING_COMPLETED,
    VersionStatus.STARTING,
    VersionStatus.RUNNING,
    VersionStatus.STOPPING,
    VersionStatus.STOPPED,
    VersionStatus.FAILED,
)


@dataclass(frozen=True)
class CopyRequest:
    source_project: str
    source_version: str
    destination_project: str
    version_name: str
    source_arn: str  # the source version's ARN: the policies match it, the copy reports it


def copy_version(svc: Services, req: CopyRequest) -> ModelVersion:
    """Copy the source version into the destination project as ``req.version_name``; the new version."""
    repo = policy_repo(svc)
    source = get_project(svc, req.source_project)
    version = get_version(svc, source.name, req.source_version)
    destination = get_project(svc, req.destination_project)
    if not VERSION_NAME.match(req.version_name):
        raise InvalidInput(
            f"invalid version name {req.version_name!r}: use 1-255 letters, digits, '_', '.' or '-'"
        )
    policies.check_copy(repo, source.id, destination.id, req.source_arn)
    if version.status not in COPYABLE or version.artifact_key is None:
        raise Conflict(
            f"model version {version.name!r} is {version.status.value}; only a trained version can be copied",
            status=version.status.value,
        )
    destination = adopt_task(svc, destination, source.task)
    if destination.task is not source.task:
        raise InvalidInput(
            f"project {destination.name!r} is a {destination.task.value} project; "
            f"a {source.task.value} model cannot be copied into it"
        )
    if any(v.name == req.version_name for v in svc.repo.list_versions(destination.id)):
        raise AlreadyExists(f"project {destination.name!r} already has a model version {req.version_name!r}")
    key = f"{destination.name}/{req.version_name}-copy-{uuid.uuid4().hex[:12]}"
    _copy_artifact(svc, source, version, destination, req.version_name, key)
    try:
        now = svc.clock.now()
        copy = svc.repo.create_version(
            destination.id, req.version_name, version.backbone, version.mode, version.snapshot_id, now
        )
    except AlreadyExists:  # another request took the name meanwhile
        _delete_objects(svc, key)
        raise
    try:
        repo.record_copy(copy.id, req.source_arn, now)
        return svc.repo.update_version(
            copy.id,
            status=VersionStatus.TRAINING_COMPLETED,
            status_message=READY_MESSAGE,
            training_ended_at=version.training_ended_at,
            f1=version.f1,
            thresholds=dict(version.thresholds),
            evaluation=None if version.evaluation is None else dict(version.evaluation),
            params=dict(version.params),
            artifact_key=key,
            artifact_checksum=version.artifact_checksum,
            training_seconds=version.training_seconds,
        )
    except Exception:  # no half-made version stays behind (it would be TRAINING_IN_PROGRESS forever)
        with contextlib.suppress(Exception):
            svc.repo.delete_version(copy.id)
        _delete_objects(svc, key)
        raise


def copy_source(svc: Services, version: ModelVersion) -> str | None:
    """The ARN the version was copied from; None for a version that was trained."""
    return policy_repo(svc).copy_sources([version.id]).get(version.id)


def _copy_artifact(
    svc: Services, source: Project, version: ModelVersion, destination: Project, name: str, key: str
) -> None:
    """Copy every object under the source's artifact key to ``key``: the model files (verified against
    their checksums on the way), the artifact's manifest, and what training stored beside them, whose
    names carry the project and version (the evaluation summary) renamed after the copy."""
    assert version.artifact_key is not None
    files = load_artifact(svc, version)  # StorageError when the source is corrupt: nothing is copied
    prefix = f"{version.artifact_key}/"
    old, new = f"-{source.name}-{version.name}", f"-{destination.name}-{name}"
    try:
        svc.store.put_many(MODELS_BUCKET, [(f"{key}/{n}", data) for n, data in files.items()])
        for obj in svc.store.list_objects(MODELS_BUCKET, prefix):
            rel = obj.key[len(prefix) :]
            if rel in files:
                continue
            data = svc.store.get(MODELS_BUCKET, obj.key)
            svc.store.put(MODELS_BUCKET, f"{key}/{rel.replace(old, new)}", data)
    except Exception:
        _delete_objects(svc, key)
        raise


def _delete_objects(svc: Services, key: str) -> None:
    with contextlib.suppress(NotFound):
        for obj in list(svc.store.list_objects(MODELS_BUCKET, f"{key}/")):
            with contextlib.suppress(NotFound):
                svc.store.delete(MODELS_BUCKET, obj.key)
