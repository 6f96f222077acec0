"""core.copies over real services (SQLite file, local store) with a version trained by the colour engine:
the copy's own artifact files, what it keeps, what a refused or failed copy leaves (nothing)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from tests.factories import make_project, write_folder_dataset
from visionloop.core import copies, datasets, policies
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.services import Services
from visionloop.core.training import (
    MODELS_BUCKET,
    TrainingOptions,
    get_version,
    load_artifact,
    request_training,
    run_training_job,
)
from visionloop.engines.fake import ColourEngine
from visionloop.errors import AlreadyExists, Conflict, NotFound, StorageError, Unavailable
from visionloop.storage.policies import SqlPolicyStore
from visionloop.storage.sql import SqlRepository

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/colours/version/v1/1"


@pytest.fixture
def trained(services: Services, tmp_path: Path) -> ModelVersion:
    make_project(services, "colours")
    make_project(services, "other")
    datasets.import_folder(
        services, "colours", str(write_folder_dataset(tmp_path / "d", {"red": 5, "blue": 5}))
    )
    request_training(services, "colours", TrainingOptions(version_name="v1"))
    job = services.repo.claim_job(services.clock.now())
    assert job is not None
    return run_training_job(services, ColourEngine(), job, "us-east-1", "123456789012")


def _request(name: str = "c1", destination: str = "other", version: str = "v1") -> copies.CopyRequest:
    return copies.CopyRequest("colours", version, destination, name, ARN)


def _objects(svc: Services, prefix: str) -> list[str]:
    return sorted(o.key for o in svc.store.list_objects(MODELS_BUCKET, prefix))


def test_a_copy_has_its_own_files_and_the_sources_results(services: Services, trained: ModelVersion) -> None:
    copy = copies.copy_version(services, _request())
    assert copy.status is VersionStatus.TRAINING_COMPLETED and copy.project_id != trained.project_id
    same = ("f1", "thresholds", "evaluation", "params", "snapshot_id", "backbone", "artifact_checksum")
    assert all(getattr(copy, f) == getattr(trained, f) for f in same)
    assert copy.artifact_key and copy.artifact_key.startswith("other/c1-copy-")
    assert load_artifact(services, copy) == load_artifact(services, trained)
    mine = [k.split("/", 2)[2] for k in _objects(services, f"{copy.artifact_key}/")]
    theirs = [k.split("/", 2)[2] for k in _objects(services, f"{trained.artifact_key}/")]
    assert mine == [k.replace("-colours-v1", "-other-c1") for k in theirs]  # the summary renamed
    assert "EvaluationResultSummary-other-c1.json" in mine
    assert copies.copy_source(services, copy) == ARN and copies.copy_source(services, trained) is None
    with pytest.raises(AlreadyExists):
        copies.copy_version(services, _request())


def test_refused_and_failed_copies_leave_nothing(services: Services, trained: ModelVersion) -> None:
    assert services.policies is not None
    project = services.repo.get_project("colours")
    deny_all = '{"Statement": {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}}'
    policies.put_policy(services.policies, project.id, "no", deny_all, None, services.clock.now())
    with pytest.raises(policies.CopyDenied):
        copies.copy_version(services, _request())
    with pytest.raises(NotFound):
        copies.copy_version(services, _request(version="v9"))
    with pytest.raises(NotFound):
        copies.copy_version(services, _request(destination="nowhere"))
    policies.delete_policy(services.policies, project.id, "no", None)

    assert trained.artifact_key is not None
    weights = f"{trained.artifact_key}/{next(iter(load_artifact(services, trained)))}"  # a model file
    good = services.store.get(MODELS_BUCKET, weights)
    services.store.put(MODELS_BUCKET, weights, good + b"corrupt")
    with pytest.raises(StorageError):
        copies.copy_version(services, _request())
    services.store.put(MODELS_BUCKET, weights, good)
    assert services.repo.list_versions(services.repo.get_project("other").id) == []
    assert _objects(services, "other/") == []


def test_only_a_trained_version_is_copied(services: Services, trained: ModelVersion) -> None:
    request_training(services, "colours", TrainingOptions(version_name="v2"))
    with pytest.raises(Conflict, match="TRAINING_IN_PROGRESS"):
        copies.copy_version(services, _request(version="v2"))
    assert get_version(services, "colours", "v2").status is VersionStatus.TRAINING_IN_PROGRESS


def test_policies_need_the_sql_store(services: Services, trained: ModelVersion) -> None:
    bare = dataclasses.replace(services, policies=None)
    with pytest.raises(Unavailable):
        copies.copy_version(bare, _request())


class _BrokenRecords(SqlPolicyStore):
    """The SQL store whose copy records cannot be written (a database failure at the last step)."""

    def record_copy(self, version_id: int, source_arn: str, now: datetime) -> None:
        raise StorageError("database write failed: disk I/O error")


def test_a_copy_that_fails_at_its_last_step_is_undone(services: Services, trained: ModelVersion) -> None:
    assert isinstance(services.repo, SqlRepository)
    broken = dataclasses.replace(services, policies=_BrokenRecords(services.repo.engine))
    with pytest.raises(StorageError):
        copies.copy_version(broken, _request())
    assert services.repo.list_versions(services.repo.get_project("other").id) == []
    assert _objects(services, "other/") == []
    assert copies.copy_version(services, _request()).name == "c1"  # the name is free again
