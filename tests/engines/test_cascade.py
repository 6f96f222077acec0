"""The cascade at prediction (recipe ``cascade``): a linear head's first two prediction views answer
alone where they are sure, the other views are embedded only for the rest (engines.selection and
engines.artifact)."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from visionloop.engines.artifact import FittedClassifier, logits_to_proba
from visionloop.engines.backbones import Backbone
from visionloop.engines.recipe import CASCADE_VIEWS, TILE_VIEWS, TrainingRecipe
from visionloop.engines.selection import CASCADE_GRID, _choose_cascade, _Search, fit_classifier
from visionloop.errors import InvalidInput

LITE0 = ("efficientnet-lite0",)


def view_embed(backbone: Backbone, images: Sequence[bytes], flip: bool) -> np.ndarray:
    """Embeddings of ``b"label:i"`` images: the label's direction plus the image's own noise, and noise
    of each view's own (views differ by their preprocessing, hence their fingerprint, and by the flip),
    so that two views are less sure than seven."""
    view = zlib.crc32(f"{backbone.spec.fingerprint}:{flip}".encode())
    out = []
    for data in images:
        label, i = (int(x) for x in data.decode().split(":"))
        base = np.random.default_rng([label, i]).normal(size=12)
        base[label] += 1.5
        out.append(base + np.random.default_rng([view, label, i]).normal(scale=1.5, size=12))
    return np.array(out, dtype=np.float32)


IMAGES = [f"{label}:{i}".encode() for label in range(3) for i in range(24)]
LABELS = [[int(d.decode()[0])] for d in IMAGES]
NEW = [f"{label}:{i}".encode() for label in range(3) for i in range(100, 120)]


def fit(onnx_cache: Path, **kwargs: object) -> FittedClassifier:
    recipe = TrainingRecipe(
        **{"backbones": LITE0, "views": TILE_VIEWS, "predict_views": TILE_VIEWS, "folds": 3, **kwargs}  # type: ignore[arg-type]
    )
    return fit_classifier(IMAGES, LABELS, 3, recipe=recipe, embed=view_embed, cache_dir=onnx_cache)


@pytest.fixture(scope="module")
def fitted(onnx_cache: Path) -> FittedClassifier:
    return fit(onnx_cache)


def every_view_logits(clf: FittedClassifier, images: Sequence[bytes]) -> list[np.ndarray]:
    assert clf.head_ is not None
    return [clf.head_.decision_function(v) for v in clf.features(images, view_embed).values()]


def test_two_views_answer_where_they_are_sure_and_seven_elsewhere(fitted: FittedClassifier) -> None:
    per_view = every_view_logits(fitted, NEW)
    first, full = np.mean(per_view[:CASCADE_VIEWS], axis=0), np.mean(per_view, axis=0)
    top = logits_to_proba(first, False).max(axis=1)
    fitted.cascade_ = float(np.median(top))  # half the images each way, whatever was chosen
    sure = top >= fitted.cascade_
    assert 0 < sure.sum() < len(NEW)
    got = fitted.decision_function(NEW, view_embed)
    np.testing.assert_allclose(got[sure], first[sure], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got[~sure], full[~sure], rtol=1e-9, atol=1e-12)
    fitted.cascade_ = None  # every view for every image
    np.testing.assert_allclose(fitted.decision_function(NEW, view_embed), full, rtol=1e-9, atol=1e-12)


def test_a_fit_keeps_the_lowest_threshold_that_never_changed_an_answer(onnx_cache: Path) -> None:
    clf = fit(onnx_cache)
    report = clf.get_params()["cascade"]
    assert clf.cascade_ in CASCADE_GRID and report["min_top_probability"] == clf.cascade_
    assert report["views"] == list(TILE_VIEWS[:CASCADE_VIEWS])
    assert 0.0 < report["answered_by_first_views_cv"] <= 1.0
    # the out-of-fold logits (calibration, thresholds, the review guide) are the cascade's
    off = fit(onnx_cache, cascade=False)
    assert off.cascade_ is None and off.get_params()["cascade"] is None
    early = ~np.isclose(clf.holdout_logits_, off.holdout_logits_).all(axis=1)  # the first views' logits
    assert early.mean() == pytest.approx(report["answered_by_first_views_cv"], abs=1e-4)
    assert (logits_to_proba(clf.holdout_logits_[early], False).max(axis=1) >= clf.cascade_).all()
    assert (clf.holdout_logits_.argmax(1) == off.holdout_logits_.argmax(1)).all()  # no answer changed


def test_no_cascade_with_one_or_two_prediction_views(onnx_cache: Path) -> None:
    for views in (("full",), ("full", "full-flip")):
        clf = fit(onnx_cache, views=views, predict_views=views)
        assert clf.cascade_ is None and clf.get_params()["cascade"] is None


def search(first: np.ndarray, full: np.ndarray) -> _Search:
    return _Search(1e-3, holdout=full, holdout_index=np.arange(len(full)), first=first)


def linear(multi_label: bool = False) -> FittedClassifier:
    clf = FittedClassifier(TrainingRecipe().resolved(), n_labels=3, multi_label=multi_label)
    clf.kind_ = "linear"
    return clf


def test_the_threshold_is_the_grids_first_above_every_changed_answer() -> None:
    first = np.array([[5.0, 0, 0], [0, 1, 0.9], [0, 0, 2], [0, 1.2, 0]])
    full = np.array([[3.0, 0, 0], [0, 3, 0], [0, 0, 3], [2, 0, 0]])  # the last one changed (top 0.624)
    clf = linear()
    s = search(first, full)
    clf.holdout_logits_ = s.holdout  # type: ignore[assignment]
    scene_first, scene_full = first[::-1].copy(), full[::-1].copy()
    clf.scene_holdout_logits_ = scene_full
    _choose_cascade(clf, s, scene_first)
    assert clf.cascade_ == 0.63
    assert clf.cascade_report_ == {
        "views": list(TILE_VIEWS[:CASCADE_VIEWS]),
        "answered_by_first_views_cv": 0.5,
    }
    np.testing.assert_array_equal(clf.holdout_logits_, [first[0], full[1], first[2], full[3]])
    np.testing.assert_array_equal(
        clf.scene_holdout_logits_, [scene_full[0], first[2], scene_full[2], first[0]]
    )


def test_no_cascade_when_a_sure_answer_changed_or_it_does_not_apply() -> None:
    full = np.array([[0.0, 3, 0], [0, 0, 3]])
    first = np.array([[9.0, 0, 0], [0, 0, 3]])  # changed at a top probability of 0.9998
    clf = linear()
    s = search(first, full)
    clf.holdout_logits_ = s.holdout  # type: ignore[assignment]
    _choose_cascade(clf, s, None)
    assert clf.cascade_ is None and clf.holdout_logits_ is full
    assert clf.cascade_report_ == {"kept": False, "worst_changed_top_probability": 0.9998}
    agree = search(full * 2, full)
    for clf in (linear(multi_label=True), linear()):
        clf.holdout_logits_ = agree.holdout  # type: ignore[assignment]
        if not clf.multi_label:
            clf.kind_ = "finetuned"
        _choose_cascade(clf, agree, None)
        assert clf.cascade_ is None and clf.holdout_logits_ is full


def test_save_and_load_keep_the_cascade(fitted: FittedClassifier, onnx_cache: Path, tmp_path: Path) -> None:
    fitted.cascade_ = 0.75
    fitted.save(tmp_path)
    again = FittedClassifier.load(tmp_path, cache_dir=onnx_cache)
    assert again.cascade_ == 0.75 and again.cascade_report_ == fitted.cascade_report_
    np.testing.assert_array_equal(
        again.decision_function(NEW, view_embed), fitted.decision_function(NEW, view_embed)
    )
    # a classifier saved before the cascade existed predicts with every view, as it was trained
    meta = json.loads((tmp_path / "classifier.json").read_text())
    del meta["params"]["cascade"]
    (tmp_path / "classifier.json").write_text(json.dumps(meta))
    assert FittedClassifier.load(tmp_path, cache_dir=onnx_cache).cascade_ is None


def test_the_recipe_refuses_a_cascade_that_is_not_a_flag() -> None:
    with pytest.raises(InvalidInput, match="cascade must be true or false"):
        dataclasses.replace(TrainingRecipe(), cascade="yes").resolved()  # type: ignore[arg-type]
