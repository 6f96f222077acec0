"""Test data for the console's model pages: evaluations computed by the real metrics code
(engines.metrics, engines.calibration) from chosen probabilities, stored on versions like training does."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.services import Services
from visionloop.engines.calibration import expected_calibration_error, reliability_table, top_label_confidence
from visionloop.engines.metrics import evaluate_classification

LABELS = ("amazon_logo", "aws_logo", "other")


def sample_probs(n_per_label: int = 6, seed: int = 0, skill: float = 2.0) -> tuple[list[int], np.ndarray]:
    """Single-label truth and softmax probabilities of a model that is right most of the time."""
    rng = np.random.default_rng(seed)
    truth = [i for i in range(len(LABELS)) for _ in range(n_per_label)]
    logits = rng.normal(size=(len(truth), len(LABELS)))
    logits[np.arange(len(truth)), truth] += skill
    e = np.exp(logits)
    return truth, e / e.sum(1, keepdims=True)


def evaluation_json(
    truth: Sequence[int],
    probs: np.ndarray,
    labels: Sequence[str] = LABELS,
    image_ids: Sequence[str] | None = None,
    scores: bool = True,
) -> dict[str, Any]:
    """What the classification engine stores as a version's evaluation (``scores=False``: as it stored
    it before per-image results kept every label's score)."""
    ids = list(image_ids) if image_ids is not None else [f"{i:064x}" for i in range(len(truth))]
    ev = evaluate_classification(list(truth), probs, labels, image_ids=ids, n_resamples=200)
    conf, correct = top_label_confidence(probs, np.array(truth))
    data = ev.to_dict()
    data["calibration"] = {
        "ece": expected_calibration_error(conf, correct),
        "reliability": [b.to_dict() for b in reliability_table(conf, correct)],
    }
    if not scores:
        for image in data["images"]:
            del image["scores"]
    return data


def store_evaluation(svc: Services, version: ModelVersion, evaluation: dict[str, Any]) -> ModelVersion:
    """Puts an evaluation on a trained version, as the classification engine would have."""
    per_label = evaluation["per_label"]
    return svc.repo.update_version(
        version.id,
        status=version.status if version.artifact_key else VersionStatus.TRAINING_COMPLETED,
        evaluation=evaluation,
        f1=evaluation["macro_f1"],
        thresholds={m["label"]: m["threshold"] if m["threshold"] is not None else 0.5 for m in per_label},
    )


def train_with_evaluation(
    svc: Services, project: str, name: str | None = None, seed: int = 0
) -> ModelVersion:
    """Trains a version of ``project`` with the fake colour engine, then stores the full evaluation the
    classification engine would have made of that model on the version's TEST snapshot."""
    from visionloop.core.images import load_image
    from visionloop.core.training import SNAPSHOTS_BUCKET, TrainingOptions, request_training
    from visionloop.engines.fake import ColourEngine, ColourModel
    from visionloop.workflows.worker import run_job

    engine = ColourEngine()
    version, job = request_training(svc, project, TrainingOptions(version_name=name, seed=seed))
    claimed = svc.repo.claim_job(svc.clock.now(), job.id)
    assert claimed is not None
    run_job(svc, engine, claimed, "us-east-1", "123456789012")
    version = svc.repo.get_version_by_id(version.id)
    assert version.status is VersionStatus.TRAINING_COMPLETED, version.status_message
    model = engine.load(load_trained_files(svc, version))
    assert isinstance(model, ColourModel)
    snapshot = json.loads(svc.store.get(SNAPSHOTS_BUCKET, f"{version.snapshot_id}.json"))
    test = [row for row in snapshot["test"] if row["labels"]]
    labels = list(model.labels)
    probs = np.array(model.predict([load_image(svc.store, row["hash"]) for row in test]))
    truth = [labels.index(row["labels"][0]) for row in test]
    evaluation = evaluation_json(truth, probs, labels, image_ids=[row["hash"] for row in test])
    return store_evaluation(svc, version, evaluation)


def load_trained_files(svc: Services, version: ModelVersion) -> dict[str, bytes]:
    from visionloop.core.training import load_artifact

    return load_artifact(svc, version)
