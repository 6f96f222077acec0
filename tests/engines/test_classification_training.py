"""Training paths of the classification engine, through the real engine (EfficientNet-Lite0 on ONNX
Runtime, Lite3 on LiteRT): when TEST was split off TRAIN automatically the served head learns the TEST
images once they are evaluated, and the artifact keeps the head as evaluated (``evaluated/`` files) so
two versions can still be compared on images neither has seen; the search leaves part of the time
budget to the evaluation; the LiteRT backbone trains."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engines.conftest import make_jpeg, synthetic_spec
from visionloop.core.ports import EVALUATED_PREFIX, TrainedModel, TrainingSpec
from visionloop.core.records.evaluation import Interval
from visionloop.core.training import as_evaluated
from visionloop.engines.classification import ClassificationEngine, new_photos_range
from visionloop.errors import InvalidInput

N_TRAIN, N_TEST = 24, 8
IMAGES = {f"{i:064x}": make_jpeg(i, size=(96, 80)) for i in range(N_TRAIN + N_TEST)}


def spec(split_off: bool, **hyperparams: Any) -> TrainingSpec:
    fixed = {"views": ["full"], "predict_views": ["full"], "l2": 0.01, "folds": 3}
    return synthetic_spec(IMAGES, N_TRAIN, {**fixed, **hyperparams}, test_split_off=split_off)


@pytest.fixture
def engine(tmp_path: Path, onnx_cache: Path) -> ClassificationEngine:
    (tmp_path / "onnx").symlink_to(onnx_cache)  # the session's exported backbones
    return ClassificationEngine(tmp_path, num_threads=1)


def train(engine: ClassificationEngine, s: TrainingSpec) -> TrainedModel:
    return engine.train(s, IMAGES.__getitem__, lambda fraction, stage: None)


def test_a_split_off_test_set_is_learned_after_it_is_evaluated(engine: ClassificationEngine) -> None:
    refitted = train(engine, spec(split_off=True))
    kept = train(engine, spec(split_off=False))
    assert (
        refitted.params["refit_on_test"] is True and refitted.params["trained_on_images"] == N_TRAIN + N_TEST
    )
    assert kept.params["refit_on_test"] is False and kept.params["trained_on_images"] == N_TRAIN
    # the evaluation is of the head before it saw TEST: the same as the version that never learns TEST
    assert refitted.evaluation == kept.evaluation and refitted.thresholds == kept.thresholds
    assert refitted.evaluation["new_photos_macro_f1"]["basis"] == "TEST"  # too few images for scenes
    # the review guide is measured on the out-of-fold predictions of the training images, not TEST
    guide = refitted.evaluation["review_guide"]
    assert guide["basis"] == "cross-validation" and guide["images"] == N_TRAIN
    assert [row["min_confidence"] for row in guide["levels"]][:3] == [50, 60, 70]
    assert guide["suggested"] is None or guide["suggested"]["wrong_caught"] >= 0.8 or guide["wrong"] == 0
    extensions = refitted.summary["VisionloopExtensions"]
    assert extensions["NewPhotosF1Range"]["Basis"] == "TEST"  # type: ignore[index]
    in_summary = extensions["ReviewGuide"]  # type: ignore[index]
    assert in_summary["Images"] == N_TRAIN and len(in_summary["Levels"]) == len(guide["levels"])
    assert in_summary["Levels"][2] == {
        "MinConfidence": 70,
        "WrongAnswersSent": guide["levels"][2]["wrong_caught"],
        "AnswersSent": guide["levels"][2]["sent"],
    }
    assert not any(name.startswith(EVALUATED_PREFIX) for name in kept.files)
    assert {EVALUATED_PREFIX + "weights.npz", EVALUATED_PREFIX + "classifier.json"} <= set(refitted.files)
    assert as_evaluated(kept.files) == dict(kept.files)
    evaluated = as_evaluated(refitted.files)
    assert set(evaluated) == set(kept.files)
    assert evaluated["weights.npz"] == kept.files["weights.npz"] != refitted.files["weights.npz"]

    test_images = [IMAGES[ex.content_hash] for ex in spec(True).test]
    served = engine.load(refitted.files).predict_proba(test_images)
    before = engine.load(evaluated).predict_proba(test_images)
    np.testing.assert_allclose(before, engine.load(kept.files).predict_proba(test_images), atol=1e-12)
    assert not np.allclose(served, before)
    # the head that learned the TEST images fits them better than the one that never saw them
    truth = np.array([0 if ex.labels == ("a",) else 1 for ex in spec(True).test])
    rows = np.arange(len(truth))
    assert np.log(served[rows, truth]).mean() > np.log(before[rows, truth]).mean()


def test_an_expert_decides_whether_test_is_learned(engine: ClassificationEngine) -> None:
    assert train(engine, spec(split_off=True, refit_on_test=False)).params["refit_on_test"] is False
    given = train(engine, spec(split_off=False, refit_on_test=True))
    assert given.params["refit_on_test"] is True
    with pytest.raises(InvalidInput, match="refit_on_test must be true or false"):
        train(engine, dataclasses.replace(spec(split_off=True), hyperparams={"refit_on_test": "yes"}))


def test_the_search_leaves_a_tenth_of_the_budget_to_evaluating_and_learning_test(
    engine: ClassificationEngine,
) -> None:
    trained = train(engine, dataclasses.replace(spec(split_off=True), max_seconds=100.0))
    assert 80.0 < trained.params["classifier"]["recipe"]["max_seconds"] <= 90.0  # less the reading


def test_the_litert_backbone_trains_learns_test_and_predicts(engine: ClassificationEngine) -> None:
    """efficientnet-lite3-int8 runs on LiteRT, not ONNX Runtime: training used to fail asking for its
    ONNX Runtime session."""
    s = dataclasses.replace(spec(split_off=True), backbone="efficientnet-lite3-int8")
    trained = train(engine, s)
    assert trained.params["backbones"] == ["efficientnet-lite3-int8"] and trained.params["refit_on_test"]
    probs = engine.load(trained.files).predict_proba([IMAGES[ex.content_hash] for ex in s.test])
    assert probs.shape == (N_TEST, 2) and np.allclose(probs.sum(axis=1), 1.0)


def test_the_f1_to_expect_on_new_photos_is_a_range() -> None:
    test = Interval(0.9, 1.0)
    assert new_photos_range(test, 0.82, True) == {"lower": 0.82, "upper": 1.0, "basis": "new scenes to TEST"}
    # scenes that could not be learned (magnetic-tile's lightings) say nothing of new photos
    assert new_photos_range(test, 0.82, False) == {"lower": 0.9, "upper": 1.0, "basis": "TEST"}
    assert new_photos_range(test, None, None) == {"lower": 0.9, "upper": 1.0, "basis": "TEST"}
    assert new_photos_range(test, 0.95, True) == {"lower": 0.9, "upper": 1.0, "basis": "new scenes to TEST"}
    assert new_photos_range(None, 0.82, True) is None


def test_the_version_names_the_backbones_and_framing_cross_validation_kept(
    engine: ClassificationEngine,
) -> None:
    """Oblong images (96 × 80): both framings and both backbones are cross-validated; the version's
    params name what was kept, not every candidate (the console shows them)."""
    searched = spec(
        split_off=False,
        backbones=["efficientnet-lite0", "efficientnet-lite0-int8"],
        search_backbones=True,
        search_framing=True,
    )
    model = train(engine, searched)
    classifier = model.params["classifier"]
    assert isinstance(classifier, dict)
    kept = classifier["recipe"]
    assert model.params["backbones"] == kept["backbones"] and len(kept["backbones"]) in (1, 2)
    assert set(classifier["views_cv_macro_f1"]) == {"full", "whole"}
    assert model.params["framing"] == ("whole image" if kept["views"] == ["whole"] else "centre")
    plain = train(engine, spec(split_off=False))
    assert plain.params["framing"] == "centre" and plain.params["backbones"] == ["efficientnet-lite0"]
