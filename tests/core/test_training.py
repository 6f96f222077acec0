"""Training flow with the colour engine (a real, tiny engine): snapshots, automatic split, lifecycle,
failures, artifacts with checksums, jobs and prediction thresholds."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.factories import image_bytes, make_project, photo_bytes, unique_colour, write_folder_dataset
from visionloop.core import datasets
from visionloop.core.entities import DatasetType, JobStatus, TaskType, VersionStatus
from visionloop.core.gate import compare_versions
from visionloop.core.images import content_hash
from visionloop.core.manifests import PixelBox
from visionloop.core.ports import EVALUATED_PREFIX, ProgressFn, TrainedModel, TrainingSpec
from visionloop.core.projects import get_dataset
from visionloop.core.services import Services
from visionloop.core.training import (
    MODELS_BUCKET,
    ModelCache,
    TrainingOptions,
    find_version,
    load_artifact,
    predict,
    request_training,
    run_training_job,
)
from visionloop.engines.fake import ColourEngine
from visionloop.errors import AlreadyExists, InvalidInput, NotFound, NotReady, StorageError
from visionloop.workflows.worker import recover_interrupted_jobs, run_job

REGION, ACCOUNT = "us-east-1", "123456789012"


@pytest.fixture
def project(services: Services, tmp_path: Path) -> str:
    root = tmp_path / "d"
    # red and blue images are easy to tell apart by colour
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (root / label).mkdir(parents=True)
        for i in range(10):
            (root / label / f"{i}.jpg").write_bytes(
                image_bytes(color=(colour[0] - i, colour[1] + i, colour[2]))
            )
    make_project(services, "colours")
    datasets.import_folder(services, "colours", str(root))
    return "colours"


def test_training_splits_snapshots_and_completes(services: Services, project: str) -> None:
    version, job = request_training(services, project)
    assert version.name == "v1" and version.status is VersionStatus.TRAINING_IN_PROGRESS
    assert job.status is JobStatus.QUEUED
    p = services.repo.get_project(project)
    assert services.repo.count_entries(get_dataset(services, p, DatasetType.TEST).id) == 4  # automatic 20 %
    assert len(services.repo.list_splits(p.id)) == 1
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None and claimed.id == job.id and claimed.status is JobStatus.RUNNING
    assert services.repo.claim_job(services.clock.now()) is None
    done = run_training_job(services, ColourEngine(), claimed, REGION, ACCOUNT)
    assert (
        done.status is VersionStatus.TRAINING_COMPLETED
        and done.status_message == "The model is ready to run."
    )
    assert done.f1 == 1.0 and done.training_seconds is not None
    job = services.repo.get_job(job.id)
    assert job.status is JobStatus.SUCCEEDED and job.progress == 1.0
    keys = [o.key for o in services.store.list_objects(MODELS_BUCKET)]
    assert f"{done.artifact_key}/EvaluationResultSummary-colours-v1.json" in keys
    # a second version reuses the recorded split and gets the next name
    v2, _ = request_training(services, project, TrainingOptions(mode="best", seed=3))
    assert v2.name == "v2" and v2.snapshot_id == version.snapshot_id
    with pytest.raises(AlreadyExists):
        request_training(services, project, TrainingOptions(version_name="v1"))


def test_prediction_uses_assumed_thresholds_unless_min_confidence(
    services: Services, project: str, tmp_path: Path
) -> None:
    _, job = request_training(services, project)
    engine = ColourEngine()
    run_job(services, engine, services.repo.claim_job(services.clock.now()) or job, REGION, ACCOUNT)
    version = find_version(services, project, None)
    cache = ModelCache(services, engine)
    red = image_bytes(color=(230, 10, 10))
    [[top]] = predict(cache, version, [red])
    assert top.label == "red" and top.confidence > 50
    [everything] = predict(cache, version, [red], min_confidence=0)
    assert [p.label for p in everything] == ["red", "blue"]
    assert predict(cache, version, [red], min_confidence=0, max_results=1)[0][0].label == "red"
    with pytest.raises(InvalidInput):
        predict(cache, version, [red], min_confidence=101)
    # a fresh process (a new cache and engine) loads the artifact and predicts the same
    again = predict(ModelCache(services, ColourEngine()), version, [red], min_confidence=0)
    assert again == [everything]


def test_failures_end_as_training_failed_with_a_message(
    services: Services, project: str, tmp_path: Path
) -> None:
    _, job = request_training(services, project, TrainingOptions(hyperparams={"bogus": 1}))
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    v = run_training_job(services, ColourEngine(), claimed, REGION, ACCOUNT)
    assert v.status is VersionStatus.TRAINING_FAILED and "unknown hyper-parameters: bogus" in v.status_message
    assert services.repo.get_job(job.id).status is JobStatus.FAILED
    with pytest.raises(NotReady):
        predict(ModelCache(services, ColourEngine()), v, [b""])
    # an unexpected engine error is recorded too, then re-raised for the log
    request_training(services, project)
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    with pytest.raises(RuntimeError):
        run_training_job(services, ColourEngine(fail_with=RuntimeError("boom")), claimed, REGION, ACCOUNT)
    failed = services.repo.get_version_by_id(claimed.version_id or 0)
    assert failed.status is VersionStatus.TRAINING_FAILED and "boom" in failed.status_message


def test_label_without_training_images(services: Services, tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "d", {"a": 3, "b": 3})
    make_project(services, "p")
    datasets.import_folder(services, "p", str(root))
    datasets.add_image(services, "p", image_bytes(color=(0, 250, 0)), "c.jpg", ["c"], dataset_type="test")
    request_training(services, "p")
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    v = run_training_job(services, ColourEngine(), claimed, REGION, ACCOUNT)
    assert (
        v.status is VersionStatus.TRAINING_FAILED and v.status_message == "label 'c' has no training images"
    )


def test_training_request_errors(services: Services) -> None:
    make_project(services, "det", TaskType.DETECTION)
    with pytest.raises(NotFound):
        request_training(services, "det")  # no TRAIN dataset yet
    with pytest.raises(InvalidInput):
        request_training(services, "det", TrainingOptions(mode="turbo"))


def test_corrupted_artifact_is_detected(services: Services, project: str) -> None:
    request_training(services, project)
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    v = run_training_job(services, ColourEngine(), claimed, REGION, ACCOUNT)
    assert load_artifact(services, v)
    services.store.put(MODELS_BUCKET, f"{v.artifact_key}/centroids.npy", b"tampered")
    with pytest.raises(StorageError, match="corrupt"):
        load_artifact(services, v)


def test_interrupted_jobs_are_failed_on_recovery(services: Services, project: str) -> None:
    version, job = request_training(services, project)
    services.repo.claim_job(services.clock.now())
    [failed] = recover_interrupted_jobs(services)
    assert failed.id == job.id and failed.status is JobStatus.FAILED
    v = services.repo.get_version_by_id(version.id)
    assert v.status is VersionStatus.TRAINING_FAILED and "interrupted" in v.status_message


def test_snapshot_is_content_addressed(services: Services, project: str) -> None:
    v, _ = request_training(services, project)
    body = services.store.get("snapshots", f"{v.snapshot_id}.json")
    assert content_hash(body) == v.snapshot_id


class RecordingEngine(ColourEngine):
    """The colour engine, keeping the specs it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.specs: list[TrainingSpec] = []

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        self.specs.append(spec)
        return super().train(spec, load_image, progress)


def test_groups_reach_the_snapshot_and_the_engine(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "g"
    n = 0
    for label in ("red", "blue"):
        for i in range(12):
            folder = root / label / f"{label}-session{i // 3}"
            folder.mkdir(parents=True, exist_ok=True)
            n += 1  # generated photos: unlike flat colours, they differ to the perceptual hash
            (folder / f"shot.{'abc'[i % 3]}.jpg").write_bytes(photo_bytes(n))
    make_project(services, "grouped")
    datasets.import_folder(services, "grouped", str(root), groups_from_folders=True)
    version, job = request_training(services, "grouped")
    snap = json.loads(services.store.get("snapshots", f"{version.snapshot_id}.json"))
    rows = snap["train"] + snap["test"]
    assert {r["group"] for r in rows} == {
        f"group:{lab}-session{s}" for lab in ("red", "blue") for s in range(4)
    }
    assert {r["group"] for r in snap["train"]}.isdisjoint({r["group"] for r in snap["test"]})
    assert snap["grouping"]["n_groups"] == 8 and snap["grouping"]["evidence"]["explicit"] == 16
    engine = RecordingEngine()
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    run_training_job(services, engine, claimed, REGION, ACCOUNT)
    (spec,) = engine.specs
    assert {ex.group for ex in (*spec.train, *spec.test)} == {r["group"] for r in rows}
    assert spec.grouping_warnings == tuple(snap["grouping"]["warnings"])


def test_snapshots_taken_before_groups_still_train(services: Services, project: str) -> None:
    version, _ = request_training(services, project)
    key = f"{version.snapshot_id}.json"
    snap = json.loads(services.store.get("snapshots", key))
    old = {
        side: [{k: v for k, v in r.items() if k != "group"} for r in snap[side]] for side in ("train", "test")
    }
    services.store.put("snapshots", key, json.dumps(old).encode())
    engine = RecordingEngine()
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    done = run_training_job(services, engine, claimed, REGION, ACCOUNT)
    assert done.status is VersionStatus.TRAINING_COMPLETED
    (spec,) = engine.specs
    assert all(ex.group is None for ex in (*spec.train, *spec.test)) and spec.grouping_warnings == ()


def test_data_no_model_can_learn_changes_no_dataset(services: Services) -> None:
    make_project(services, "det", TaskType.DETECTION)
    for i in range(6):  # images without a box: nothing a detector can learn from
        datasets.add_image(services, "det", image_bytes(color=unique_colour(i)), f"{i}.jpg")
    make_project(services, "one")
    for i in range(6):
        datasets.add_image(services, "one", image_bytes(color=unique_colour(i)), f"{i}.jpg", ["cat"])
    with pytest.raises(InvalidInput, match="no images with bounding boxes"):  # refused: no version
        request_training(services, "det")
    version, _ = request_training(services, "one")  # a version that fails with the reason, as AWS's
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    failed = run_training_job(services, ColourEngine(), claimed, REGION, ACCOUNT)
    assert failed.status_message == "a classification model needs at least 2 labels with training images"
    for name, versions in (("det", 0), ("one", 1)):
        project = services.repo.get_project(name)
        assert services.repo.find_dataset(project.id, DatasetType.TEST) is None  # no split happened
        assert services.repo.count_entries(get_dataset(services, project, DatasetType.TRAIN).id) == 6
        assert len(services.repo.list_versions(project.id)) == versions
        assert services.repo.list_splits(project.id) == []


def test_a_detection_spec_holds_the_boxes(services: Services) -> None:
    make_project(services, "det", TaskType.DETECTION)
    boxes = {i: [PixelBox("cat" if i % 2 else "dog", 10, 10, 30 + i, 20)] for i in range(10)}
    for i in range(10):
        datasets.add_image(services, "det", photo_bytes(i, (96, 80)), f"{i}.jpg", boxes=boxes[i])
    datasets.add_image(services, "det", photo_bytes(99, (96, 80)), "none.jpg")  # unlabelled: left out
    engine = RecordingEngine()
    request_training(services, "det")
    claimed = services.repo.claim_job(services.clock.now())
    assert claimed is not None
    run_training_job(services, engine, claimed, REGION, ACCOUNT)
    [spec] = engine.specs
    assert spec.task is TaskType.DETECTION and spec.labels == ("cat", "dog")
    assert len(spec.train) + len(spec.test) == 10 and spec.test
    for ex in (*spec.train, *spec.test):
        [box] = ex.boxes
        assert ex.labels == (box.label,) and box.left == pytest.approx(10 / 96) and box.height == 0.25


def test_the_engine_is_told_whether_test_was_split_off_train(
    services: Services, project: str, tmp_path: Path
) -> None:
    """TEST holding what the automatic split moved there: the user gave those images to train on (the
    engine may learn them once evaluated); an image added to TEST by hand makes TEST the user's."""
    engine = RecordingEngine()

    def train() -> bool:
        version, _ = request_training(services, project)
        snap = json.loads(services.store.get("snapshots", f"{version.snapshot_id}.json"))
        claimed = services.repo.claim_job(services.clock.now())
        assert claimed is not None
        run_training_job(services, engine, claimed, REGION, ACCOUNT)
        return bool(snap["test_split_off"])

    assert train() is True
    extra = tmp_path / "extra" / "red"
    extra.mkdir(parents=True)
    (extra / "x.jpg").write_bytes(image_bytes(color=(250, 5, 5)))
    datasets.import_folder(services, project, str(tmp_path / "extra"), DatasetType.TEST)
    assert train() is False
    assert [spec.test_split_off for spec in engine.specs] == [True, False]


class LearnsTestEngine(ColourEngine):
    """The colour engine, serving a model that has "learned its TEST images" (here: one whose colours
    are swapped, so that it is told apart) and keeping the evaluated one under EVALUATED_PREFIX."""

    def train(
        self, spec: TrainingSpec, load_image: Callable[[str], bytes], progress: ProgressFn
    ) -> TrainedModel:
        trained = super().train(spec, load_image, progress)
        centroids = np.load(io.BytesIO(trained.files["centroids.npy"]))
        buf = io.BytesIO()
        np.save(buf, centroids[::-1])
        files = {**trained.files, "centroids.npy": buf.getvalue()}
        files[EVALUATED_PREFIX + "centroids.npy"] = trained.files["centroids.npy"]
        return dataclasses.replace(trained, files=files)


def test_the_gate_compares_the_models_as_they_were_evaluated(services: Services, project: str) -> None:
    versions = []
    for engine in (LearnsTestEngine(), ColourEngine()):
        request_training(services, project)
        claimed = services.repo.claim_job(services.clock.now())
        assert claimed is not None
        versions.append(run_training_job(services, engine, claimed, REGION, ACCOUNT))
    champion, challenger = versions
    served = ColourEngine().load(load_artifact(services, champion))
    assert served.labels[int(np.argmax(served.predict([image_bytes(color=(220, 20, 20))])[0]))] == "blue"
    result = compare_versions(services, ColourEngine(), champion, challenger, 0.0)
    assert result["champion_macro_f1"] == result["challenger_macro_f1"] == 1.0 and result["passed"]
