"""The training recipe end to end on a small real subset of grocery-produce (4 labels × 10 photos)."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from visionloop.engines.artifact import FittedClassifier
from visionloop.engines.backbones import Backbone
from visionloop.engines.patches import PatchBanks
from visionloop.engines.recipe import (
    MIRRORED_TILE_VIEWS,
    TILE_VIEWS,
    VIEWS,
    TrainingRecipe,
    View,
    mostly_square,
    whole_framed,
)
from visionloop.engines.selection import (
    CHEAPER_WINS_WITHIN,
    PATCH_MAX_LABELS,
    PATCH_MIN_IMAGES,
    SCENES_BEAT_CHANCE_BY,
    _chance_macro_f1,
    _folds,
    _framing_probe,
    _maybe_stack,
    _PatchScores,
    _Search,
    _strata,
    fit_classifier,
)
from visionloop.errors import InvalidInput, NotFitted, StorageError

LABELS = ("Banana", "Carrots", "Kiwi", "Tomato")
PER_LABEL = 10
TRAIN_PER_LABEL = 6
LITE0 = ("efficientnet-lite0",)


class Photos:
    """Train/test photos: the 10 photos of each label are spread over its sorted file list."""

    def __init__(self, root: Path) -> None:
        self.train: list[bytes] = []
        self.test: list[bytes] = []
        self.y_train: list[int] = []
        self.y_test: list[int] = []
        for i, label in enumerate(LABELS):
            files = sorted((root / label).glob("*.jpg"))
            picked = files[:: max(1, len(files) // PER_LABEL)][:PER_LABEL]
            for j, f in enumerate(picked):
                if j % 5 in (1, 3):  # 4 of 10 to test, interleaved
                    self.test.append(f.read_bytes())
                    self.y_test.append(i)
                else:
                    self.train.append(f.read_bytes())
                    self.y_train.append(i)


class MemoEmbed:
    """An ``embed`` hook that remembers embeddings (what the engine's cache does), counting misses."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, bool, int], np.ndarray] = {}
        self.misses = 0

    def __call__(self, backbone: Backbone, images: Sequence[bytes], flip: bool) -> np.ndarray:
        key = (backbone.spec.fingerprint, flip, hash(tuple(images)))
        if key not in self.vectors:
            self.misses += 1
            self.vectors[key] = backbone.embed(images, flip=flip)
        return self.vectors[key]


@pytest.fixture(scope="module")
def photos() -> Photos:
    root = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "grocery-produce"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the shared datasets are not on this machine")
    return Photos(root)


@pytest.fixture(scope="module")
def memo() -> MemoEmbed:
    return MemoEmbed()


@pytest.fixture(scope="module")
def fitted(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> FittedClassifier:
    """The default recipe (fast mode, EfficientNet-Lite0 INT8 on seven views), trained once for the module."""
    return fit_classifier(
        photos.train,
        [[y] for y in photos.y_train],
        len(LABELS),
        recipe=TrainingRecipe(),
        embed=memo,
        cache_dir=onnx_cache,
    )


def lite0_fit(photos: Photos, cache: Path, memo: MemoEmbed, **kwargs: Any) -> FittedClassifier:
    labels: Any = kwargs.pop("labels", [[y] for y in photos.y_train])
    n_labels = kwargs.pop("n_labels", len(LABELS))
    multi = kwargs.pop("multi_label", False)
    progress: Callable[[float, str], None] | None = kwargs.pop("progress", None)
    recipe = TrainingRecipe(**{"backbones": LITE0, "views": ("full",), "predict_views": ("full",), **kwargs})
    return fit_classifier(
        photos.train,
        labels,
        n_labels,
        multi_label=multi,
        recipe=recipe,
        progress=progress,
        embed=memo,
        cache_dir=cache,
    )


def test_default_recipe_is_well_above_chance(fitted: FittedClassifier, photos: Photos) -> None:
    proba = fitted.predict_proba(photos.test)
    assert proba.shape == (len(photos.test), len(LABELS))
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
    accuracy = (proba.argmax(1) == np.array(photos.y_test)).mean()
    assert accuracy >= 0.8  # chance is 0.25
    params = fitted.get_params()
    json.dumps(params)  # JSON-serialisable
    assert params["recipe"]["mode"] == "fast"
    assert params["recipe"]["backbones"] == ["efficientnet-lite0-int8"]
    assert params["recipe"]["views"] == list(TILE_VIEWS) and params["cv_groups"] >= 2
    assert params["l2"] in params["recipe"]["l2_grid"]


def test_holdout_logits_come_from_every_training_image(fitted: FittedClassifier, photos: Photos) -> None:
    n = len(photos.train)
    assert fitted.holdout_logits_.shape == (n, len(LABELS))
    assert sorted(fitted.holdout_index_.tolist()) == list(range(n))
    assert fitted.holdout_labels_ == [[photos.y_train[i]] for i in fitted.holdout_index_]
    oof_accuracy = (fitted.holdout_logits_.argmax(1) == np.array(photos.y_train)).mean()
    assert oof_accuracy > 0.6


def test_same_seed_gives_identical_probabilities(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> None:
    a = lite0_fit(photos, onnx_cache, memo, seed=3)
    b = lite0_fit(photos, onnx_cache, memo, seed=3)
    np.testing.assert_array_equal(a.predict_proba(photos.test), b.predict_proba(photos.test))
    np.testing.assert_array_equal(a.holdout_logits_, b.holdout_logits_)
    assert (a.predict_proba(photos.test).argmax(1) == np.array(photos.y_test)).mean() >= 0.75


def test_embed_hook_is_used_for_every_view_and_backbone(photos: Photos, onnx_cache: Path) -> None:
    memo = MemoEmbed()
    clf = lite0_fit(photos, onnx_cache, memo, views=("full", "zoom-flip"), predict_views=("crop",))
    assert memo.misses == 3  # training views and prediction views
    clf.predict_proba(photos.test[:2], embed=memo)
    assert memo.misses == 4  # only the prediction view


def test_save_load_in_a_fresh_process_gives_identical_predictions(
    fitted: FittedClassifier, photos: Photos, onnx_cache: Path, tmp_path: Path
) -> None:
    assert fitted.save(tmp_path / "model") == ["classifier.json", "weights.npz"]
    images = tmp_path / "images.npy"
    np.save(images, np.array(photos.test[:4], dtype=object), allow_pickle=True)
    out = tmp_path / "proba.npy"
    code = (
        "import sys, numpy as np\n"
        "from visionloop.engines.artifact import FittedClassifier\n"
        "clf = FittedClassifier.load(sys.argv[1], cache_dir=sys.argv[2])\n"
        "np.save(sys.argv[4], clf.predict_proba(list(np.load(sys.argv[3], allow_pickle=True))))\n"
    )
    args = [str(tmp_path / "model"), str(onnx_cache), str(images), str(out)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(out), fitted.predict_proba(photos.test[:4]))
    again = FittedClassifier.load(tmp_path / "model", cache_dir=onnx_cache)
    assert again.get_params()["l2"] == fitted.get_params()["l2"]


def test_a_tampered_artifact_is_refused(fitted: FittedClassifier, onnx_cache: Path, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    weights = tmp_path / "weights.npz"
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(StorageError, match="checksum"):
        FittedClassifier.load(tmp_path, cache_dir=onnx_cache)
    with pytest.raises(StorageError):
        FittedClassifier.load(tmp_path / "missing", cache_dir=onnx_cache)


def test_multi_label(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> None:
    # label 0..3 as before, plus label 4 "round fruit" on Kiwi and Tomato photos
    labels = [[y, 4] if y in (2, 3) else [y] for y in photos.y_train]
    clf = lite0_fit(photos, onnx_cache, memo, labels=labels, n_labels=5, multi_label=True)
    proba = clf.predict_proba(photos.test)
    assert proba.shape == (len(photos.test), 5)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(1), 1.0)
    truth = np.zeros_like(proba, dtype=bool)
    for i, y in enumerate(photos.y_test):
        truth[i, y] = True
        truth[i, 4] = y in (2, 3)
    assert ((proba > 0.5) == truth).mean() > 0.85
    assert clf.holdout_logits_.shape == (len(photos.train), 5)
    assert all(
        4 in row
        for row, y in zip(clf.holdout_labels_, clf.holdout_index_, strict=True)
        if photos.y_train[y] in (2, 3)
    )


def test_predicting_before_fit_raises_not_fitted(photos: Photos) -> None:
    clf = FittedClassifier(TrainingRecipe().resolved(), 4, False)
    with pytest.raises(NotFitted):
        clf.predict_proba(photos.test[:1])
    with pytest.raises(NotFitted):
        clf.save("/nonexistent")


def test_max_seconds_is_honoured(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> None:
    lite0_fit(photos, onnx_cache, memo)  # embeddings in the memo: what is left is the search
    started = time.monotonic()
    stages: list[str] = []
    clf = lite0_fit(
        photos,
        onnx_cache,
        memo,
        max_seconds=0.05,
        l2_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3),
        progress=lambda fraction, stage: stages.append(stage),
    )
    assert time.monotonic() - started < 5
    assert clf.stopped_early_
    assert len(clf.cv_scores_) < 8
    assert stages[-1] == "done"
    assert (clf.predict_proba(photos.test).argmax(1) == np.array(photos.y_test)).mean() >= 0.5
    assert len(clf.holdout_index_) == len(clf.holdout_logits_) > 0


def test_an_expert_l2_skips_the_search(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> None:
    clf = lite0_fit(photos, onnx_cache, memo, l2=0.05)
    assert clf.l2_ == 0.05
    assert list(clf.cv_scores_) == [0.05]


def test_extra_views_are_kept_only_if_they_win(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> None:
    searched = lite0_fit(photos, onnx_cache, memo, views=("full", "full-flip"), search_views=True)
    assert set(searched.view_scores_) == {"full,full-flip", "full"}
    scores = searched.view_scores_  # the costlier views must win by more than CHEAPER_WINS_WITHIN
    winner = "full,full-flip" if scores["full,full-flip"] > scores["full"] + CHEAPER_WINS_WITHIN else "full"
    assert ",".join(searched.recipe.views or ()) == winner
    # an expert's views are used as given
    given = lite0_fit(photos, onnx_cache, memo, views=("full", "full-flip"))
    assert given.recipe.views == ("full", "full-flip") and list(given.view_scores_) == ["full,full-flip"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "slow"}, "mode"),
        ({"l2": -1.0}, "l2"),
        ({"l2_grid": ()}, "l2_grid"),
        ({"folds": 1}, "folds"),
        ({"views": ("sideways",)}, "views"),
        ({"views": ()}, "views"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"backbones": ()}, "backbones"),
        ({"seed": 1.5}, "seed"),
        ({"predict_views": ("full", "full")}, "predict_views"),
        ({"finetune": "yes"}, "finetune"),
        ({"search_views": 1}, "search_views"),
        ({"search_framing": "no"}, "search_framing"),
        ({"mode": "best", "epochs": 0}, "epochs"),
        ({"mode": "best", "lr": 0.0}, "lr"),
        ({"mode": "best", "finetune_blocks": 0}, "finetune_blocks"),
        ({"patch_scores": "yes"}, "patch_scores"),
        ({"patch_size": 100}, "patch_size"),
        ({"patch_size": 2048}, "patch_size"),
        ({"patch_bank": 0}, "patch_bank"),
        ({"force_patch_scores": 1}, "force_patch_scores"),
    ],
)
def test_bad_hyperparameters_are_refused(kwargs: dict[str, Any], message: str, photos: Photos) -> None:
    recipe = TrainingRecipe(**kwargs)  # stored as given; refused when fitting
    with pytest.raises(InvalidInput, match=message):
        fit_classifier(photos.train, [[y] for y in photos.y_train], len(LABELS), recipe=recipe)


def test_bad_labels_are_refused(photos: Photos) -> None:
    with pytest.raises(InvalidInput, match="label indices"):
        fit_classifier(photos.train, [[9] for _ in photos.y_train], len(LABELS))
    with pytest.raises(InvalidInput, match="exactly one"):
        fit_classifier(photos.train, [[0, 1] for _ in photos.y_train], len(LABELS))
    with pytest.raises(InvalidInput, match="label lists"):
        fit_classifier(photos.train, [[0]], len(LABELS))


def test_recipe_from_dict_refuses_unknown_keys() -> None:
    assert TrainingRecipe.from_dict({"mode": "best", "l2_grid": [0.1]}).l2_grid == (0.1,)
    with pytest.raises(InvalidInput, match="unknown hyper-parameters: C"):
        TrainingRecipe.from_dict({"C": 1.0})
    best = TrainingRecipe(mode="best").resolved()
    assert best.backbones == ("efficientnet-lite0", "efficientnet-lite2") and best.search_backbones
    assert not best.finetune and best.max_seconds == 600
    assert TrainingRecipe(mode="best", finetune=True).resolved().backbones == ("efficientnet-lite0",)
    assert TrainingRecipe(mode="best", max_seconds=60).resolved().max_seconds == 60
    assert TrainingRecipe().resolved().max_seconds is None


# --- group folds ---------------------------------------------------------------------------------------


def grouped_targets(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Three labels with 12, 8 and 5 groups of 1 to 4 images each."""
    rng = np.random.default_rng(seed)
    target, groups = [], []
    for label, n_groups in enumerate((12, 8, 5)):
        for g in range(n_groups):
            for _ in range(int(rng.integers(1, 5))):
                target.append(label)
                groups.append(f"{label}-{g}")
    return np.array(target), groups


def test_folds_put_every_group_in_exactly_one_fold() -> None:
    for seed in range(5):
        target, groups = grouped_targets(seed)
        folds = _folds(target, 5, seed, False, groups)
        assert len(folds) == 5
        assert sorted(np.concatenate(folds).tolist()) == list(range(len(target)))  # a partition
        fold_of: dict[str, set[int]] = {}
        for f, val in enumerate(folds):
            for i in val:
                fold_of.setdefault(groups[i], set()).add(f)
        assert all(len(fs) == 1 for fs in fold_of.values())


def test_folds_stay_stratified_as_far_as_the_groups_allow() -> None:
    target, groups = grouped_targets(1)
    folds = _folds(target, 5, 0, False, groups)
    for label in (0, 1, 2):  # each label has at least 5 groups: it is in every fold
        assert all((target[val] == label).any() for val in folds)
    sizes = [len(val) for val in folds]
    assert max(sizes) - min(sizes) <= 4  # groups are at most 4 images
    again = _folds(target, 5, 0, False, list(groups))  # deterministic for a seed
    assert all(np.array_equal(a, b) for a, b in zip(again, folds, strict=True))


def test_folds_without_groups_treat_each_image_alone() -> None:
    target = np.array([0] * 10 + [1] * 5)
    folds = _folds(target, 5, 3, False)
    assert len(folds) == 5 and sorted(np.concatenate(folds).tolist()) == list(range(15))
    assert all((target[val] == 0).sum() == 2 and (target[val] == 1).sum() == 1 for val in folds)
    alone = _folds(target, 5, 3, False, [str(i) for i in range(15)])
    assert all(np.array_equal(a, b) for a, b in zip(folds, alone, strict=True))
    # fewer groups than folds: one fold per group
    assert len(_folds(target, 5, 0, False, ["a"] * 8 + ["b"] * 7)) == 2


def test_folds_for_multi_label_targets_keep_groups_whole() -> None:
    rng = np.random.default_rng(2)
    target = (rng.random((40, 3)) < 0.4).astype(np.int64)
    target[:, 0] |= target.sum(1) == 0  # every image has a label
    groups = [f"g{i // 4}" for i in range(40)]
    folds = _folds(target, 4, 0, True, groups)
    assert len(folds) == 4
    for val in folds:
        assert len({groups[i] for i in val}) * 4 == len(val)


def test_multi_label_folds_spread_each_images_rarest_label() -> None:
    target = np.zeros((60, 3), dtype=np.int64)
    target[:, 0] = 1  # on every image
    target[:30, 1] = 1
    target[30:40, 2] = 1  # the rare label: ten images in five groups of two
    groups = [f"r{i // 2}" if 30 <= i < 40 else f"g{i}" for i in range(60)]
    for seed in range(3):
        folds = _folds(target, 5, seed, True, groups)
        assert len(folds) == 5
        assert sorted(np.concatenate(folds).tolist()) == list(range(60))
        assert all(target[val, 2].sum() == 2 for val in folds)  # one rare group per fold


def test_folds_when_every_label_has_fewer_images_than_folds() -> None:
    target = np.array([0, 0, 1, 1, 2, 2])
    groups = ["a", "a", "b", "c", "d", "e"]
    folds = _folds(target, 5, 0, False, groups)  # sklearn's stratified splitter refuses this
    assert len(folds) == 5 and sorted(np.concatenate(folds).tolist()) == list(range(6))
    assert any({0, 1} <= set(val.tolist()) for val in folds)  # group "a" stays whole


def test_strata_are_the_label_or_the_rarest_label() -> None:
    assert _strata(np.array([2, 0, 2]), False) == ["2", "0", "2"]
    multi = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [0, 0, 0], [1, 1, 1]])
    # label counts: 0 → 4, 1 → 2, 2 → 2 (a tie goes to the lower index)
    assert _strata(multi, True) == ["1", "0", "2", "none", "1"]


def test_tile_views_are_the_whole_image_its_mirror_its_quarters_and_its_centre() -> None:
    assert TrainingRecipe().resolved().views == TILE_VIEWS == TrainingRecipe().resolved().predict_views
    assert all(v in VIEWS for v in TILE_VIEWS)
    assert VIEWS["full"] == View() and VIEWS["full-flip"] == View(flip=True)
    quarters = [VIEWS[f"tile-{q}"].region for q in ("tl", "tr", "bl", "br")]
    assert quarters == [
        (0.0, 0.0, 0.5, 0.5),
        (0.5, 0.0, 1.0, 0.5),
        (0.0, 0.5, 0.5, 1.0),
        (0.5, 0.5, 1.0, 1.0),
    ]
    assert VIEWS["tile-centre"].region == (0.25, 0.25, 0.75, 0.75)
    assert not any(VIEWS[v].flip for v in TILE_VIEWS if v.startswith("tile"))
    assert TrainingRecipe().resolved().search_backbones is False
    assert TrainingRecipe(backbones=LITE0 + ("efficientnet-lite2",)).resolved().search_backbones is False
    assert (
        TrainingRecipe(mode="best", backbones=LITE0 + ("efficientnet-lite2",)).resolved().search_backbones
        is False
    )
    with pytest.raises(InvalidInput, match="search_backbones"):
        TrainingRecipe(search_backbones="yes").resolved()  # type: ignore[arg-type]


# --- groups in fit_classifier --------------------------------------------------------------------------


def test_groups_that_are_all_one_group_fall_back_to_image_folds_with_a_warning(
    photos: Photos, onnx_cache: Path, memo: MemoEmbed
) -> None:
    clf = lite0_fit_grouped(photos, onnx_cache, memo, ["one session"] * len(photos.train))
    params = clf.get_params()
    (warning,) = params["warnings"]
    assert "one group" in warning and "optimistic" in warning
    assert params["cv_groups"] == len(photos.train)
    assert sorted(clf.holdout_index_.tolist()) == list(range(len(photos.train)))


def test_groups_are_kept_whole_and_counted(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> None:
    groups = [f"{y}-{i // 2}" for i, y in enumerate(photos.y_train)]  # pairs of photos of one label
    clf = lite0_fit_grouped(photos, onnx_cache, memo, groups)
    # each label has 3 groups (< 8): too few to cluster, so the groups themselves are the folds' units
    assert clf.get_params()["cv_groups"] == len(set(groups)) == 12
    assert clf.get_params()["warnings"] == []


def test_groups_of_the_wrong_length_are_refused(photos: Photos) -> None:
    with pytest.raises(InvalidInput, match="groups"):
        fit_classifier(photos.train, [[y] for y in photos.y_train], len(LABELS), groups=["a", "b"])


def lite0_fit_grouped(
    photos: Photos, cache: Path, memo: MemoEmbed, groups: Sequence[str | None]
) -> FittedClassifier:
    recipe = TrainingRecipe(backbones=LITE0, views=("full",), predict_views=("full",))
    return fit_classifier(
        photos.train,
        [[y] for y in photos.y_train],
        len(LABELS),
        recipe=recipe,
        embed=memo,
        cache_dir=cache,
        groups=groups,
    )


# --- the backbone search -------------------------------------------------------------------------------

TWO = ("efficientnet-lite0", "efficientnet-lite2")


def test_backbone_search_keeps_the_best_set_and_only_its_fingerprints(
    photos: Photos, onnx_cache: Path, memo: MemoEmbed, tmp_path: Path
) -> None:
    clf = lite0_fit(photos, onnx_cache, memo, backbones=TWO, search_backbones=True)
    scores = clf.get_params()["backbones_cv_macro_f1"]
    assert set(scores) == {
        "efficientnet-lite0",
        "efficientnet-lite2",
        "efficientnet-lite0+efficientnet-lite2",
    }
    order = ["efficientnet-lite0", "efficientnet-lite2", "efficientnet-lite0+efficientnet-lite2"]
    winner = order[0]  # a costlier set must win by more than CHEAPER_WINS_WITHIN
    for key in order[1:]:
        if clf.backbone_scores_[key] > clf.backbone_scores_[winner] + CHEAPER_WINS_WITHIN:
            winner = key
    kept = tuple(clf.recipe.backbones or ())
    assert "+".join(kept) == winner
    assert clf.get_params()["recipe"]["backbones"] == list(kept)
    assert set(clf.get_params()["backbone_fingerprints"]) == {f"{name}|full" for name in kept}
    clf.save(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "classifier.json").read_text())
    assert set(saved["params"]["backbone_fingerprints"]) == {f"{name}|full" for name in kept}
    again = FittedClassifier.load(tmp_path / "model", cache_dir=onnx_cache)
    np.testing.assert_array_equal(again.predict_proba(photos.test[:3]), clf.predict_proba(photos.test[:3]))


def test_an_experts_backbones_disable_the_search(photos: Photos, onnx_cache: Path, memo: MemoEmbed) -> None:
    clf = lite0_fit(photos, onnx_cache, memo, backbones=TWO)
    assert clf.recipe.backbones == TWO and clf.recipe.search_backbones is False
    assert list(clf.get_params()["backbones_cv_macro_f1"]) == ["efficientnet-lite0+efficientnet-lite2"]
    assert set(clf.get_params()["backbone_fingerprints"]) == {f"{name}|full" for name in TWO}


# --- the estimate on new scenes ------------------------------------------------------------------------


def points(images: Sequence[bytes], label_weight: float, scenes: int, shared: bool = False) -> np.ndarray:
    """Embeddings made from the images' bytes: ``b"<label>:<scene>:<i>"`` → a point near its label's
    direction (times ``label_weight``) plus a direction of its own for each (label, scene), or with
    ``shared`` for each scene number (the same scenes, e.g. lightings, for every label)."""
    out = []
    for data in images:
        label, scene, i = (int(x) for x in data.decode().split(":"))
        rng = np.random.default_rng(1000 * label + 10 * scene + i)
        centre = np.zeros(32)
        centre[label] = label_weight
        centre[8 + scene if shared else 8 + scenes * label + scene] = 4.0
        out.append(centre + rng.normal(0, 0.3, 32))
    return np.array(out, dtype=np.float32)


def blob_embed(backbone: Backbone, images: Sequence[bytes], flip: bool) -> np.ndarray:
    """Three scenes a label sharing the label's direction, the same for every view."""
    return points(images, 3.0, 3)


def test_the_estimate_on_new_scenes_is_measured_when_labels_have_scenes(onnx_cache: Path) -> None:
    images = [f"{label}:{scene}:{i}".encode() for label in range(2) for scene in range(3) for i in range(8)]
    labels = [[int(d.decode()[0])] for d in images]
    recipe = TrainingRecipe(backbones=LITE0, views=("full",), predict_views=("full",), folds=3)
    clf = fit_classifier(images, labels, 2, recipe=recipe, embed=blob_embed, cache_dir=onnx_cache)
    assert clf.scene_cv_macro_f1_ is not None and 0.0 <= clf.scene_cv_macro_f1_ <= 1.0
    assert clf.get_params()["scene_cv_macro_f1"] == round(clf.scene_cv_macro_f1_, 4)
    off = fit_classifier(
        images,
        labels,
        2,
        recipe=dataclasses.replace(recipe, scene_estimate=False),
        embed=blob_embed,
        cache_dir=onnx_cache,
    )
    assert off.scene_cv_macro_f1_ is None and "scene_estimate_seconds" not in off.timings_


def test_no_estimate_on_new_scenes_when_labels_are_too_small(
    fitted: FittedClassifier, photos: Photos
) -> None:
    assert len(photos.train) // len(LABELS) < 16  # fewer images a label than four scenes need
    assert fitted.scene_cv_macro_f1_ is None and fitted.get_params()["scene_cv_macro_f1"] is None


def scene_only_embed(backbone: Backbone, images: Sequence[bytes], flip: bool) -> np.ndarray:
    """The same five scenes for both labels (lightings, say) without the labels' directions: heads that
    never saw a scene with a label can only guess there or follow the other label (the scenes are not a
    task they could learn). With a scene of each label's own, out-of-scene F1 is a handful of coin flips
    (one per scene) and comes out above chance + SCENES_BEAT_CHANCE_BY for about one fold seed in four."""
    return points(images, 0.0, 5, shared=True)


def test_calibrating_on_scenes_keeps_their_logits_only_when_scenes_can_be_learned(onnx_cache: Path) -> None:
    images = [f"{label}:{scene}:{i}".encode() for label in range(2) for scene in range(3) for i in range(8)]
    labels = [[int(d.decode()[0])] for d in images]
    recipe = TrainingRecipe(
        backbones=LITE0, views=("full",), predict_views=("full",), folds=3, calibrate_on_scenes=True
    )
    clf = fit_classifier(images, labels, 2, recipe=recipe, embed=blob_embed, cache_dir=onnx_cache)
    assert clf.scene_holdout_logits_ is not None and clf.scene_holdout_logits_.shape == (len(images), 2)
    off = fit_classifier(
        images,
        labels,
        2,
        recipe=dataclasses.replace(recipe, calibrate_on_scenes=False),
        embed=blob_embed,
        cache_dir=onnx_cache,
    )
    assert off.scene_holdout_logits_ is None and off.scene_cv_macro_f1_ == clf.scene_cv_macro_f1_
    # five scenes a label, as many as the clustering looks for, each with a direction of its own
    images = [f"{label}:{scene}:{i}".encode() for label in range(2) for scene in range(5) for i in range(6)]
    labels = [[int(d.decode()[0])] for d in images]
    blind = fit_classifier(images, labels, 2, recipe=recipe, embed=scene_only_embed, cache_dir=onnx_cache)
    assert blind.scene_cv_macro_f1_ is not None and blind.scene_cv_macro_f1_ < 0.5 + SCENES_BEAT_CHANCE_BY
    assert blind.scene_holdout_logits_ is None


def test_chance_is_the_better_of_the_constant_answer_and_guessing() -> None:
    clf = FittedClassifier(TrainingRecipe().resolved(), n_labels=3, multi_label=False)
    skewed = np.array([0] * 8 + [1, 2])  # always 0: (2·0.8/1.8)/3 = 0.296; guessing: lower
    assert _chance_macro_f1(skewed, clf) == pytest.approx((1.6 / 1.8) / 3)
    two = FittedClassifier(TrainingRecipe().resolved(), n_labels=2, multi_label=False)
    assert _chance_macro_f1(np.array([0, 1] * 5), two) == pytest.approx(0.5)  # guessing beats 1/3
    multi = FittedClassifier(TrainingRecipe().resolved(), n_labels=2, multi_label=True)
    both = np.array([[1, 0], [1, 1], [1, 0], [1, 0]])  # label 0 always on (answered: F1 1), label 1 on 1 of 4
    constant = (1.0 + 0.0) / 2
    guess = (2 * 1.0 * 0.5 / 1.5 + 2 * 0.25 * 0.5 / 0.75) / 2
    assert _chance_macro_f1(both, multi) == pytest.approx(max(constant, guess))


# --- framing: views of the whole image for oblong images -----------------------------------------------


def test_every_centred_view_of_the_whole_image_has_a_whole_twin() -> None:
    assert whole_framed(TILE_VIEWS) == (
        "whole",
        "whole-flip",
        "whole-tl",
        "whole-tr",
        "whole-bl",
        "whole-br",
        "whole-centre",
    )
    twins = whole_framed(MIRRORED_TILE_VIEWS)
    assert twins is not None and len(twins) == 12
    for centred, whole in zip(MIRRORED_TILE_VIEWS, twins, strict=True):
        assert VIEWS[whole] == dataclasses.replace(VIEWS[centred], whole=True)
    assert whole_framed(("full", "zoom")) is None  # a zoomed view has no twin
    assert whole_framed(("whole", "whole-flip")) is None  # already whole


def test_images_are_mostly_square_unless_a_tenth_are_oblong() -> None:
    assert mostly_square([(348, 348)] * 10)
    assert mostly_square([(348, 348)] * 10 + [(640, 480)])  # 1 of 11 oblong
    assert not mostly_square([(348, 348)] * 9 + [(640, 480)])  # 1 of 10
    assert not mostly_square([(200, 480)] * 3)  # tall counts too
    assert mostly_square([(110, 100)] * 3)  # the centre square leaves less than a tenth unseen
    assert mostly_square([None, None])  # unreadable headers never ask for the search


def test_oblong_images_probe_the_prediction_views_centred_and_of_the_whole_image() -> None:
    oblong, square = [_png((480, 160))] * 10, [_png((200, 200))] * 10
    fast = TrainingRecipe().resolved()
    assert fast.search_framing is True
    probe = _framing_probe(fast, oblong)
    assert probe is not None and probe.centred == TILE_VIEWS and probe.whole == whole_framed(TILE_VIEWS)
    assert probe.whole_train == whole_framed(TILE_VIEWS)
    assert _framing_probe(fast, square) is None
    best = _framing_probe(TrainingRecipe(mode="best").resolved(), oblong)
    assert (
        best is not None
        and best.centred == TILE_VIEWS
        and best.whole_train == whole_framed(MIRRORED_TILE_VIEWS)
    )
    assert _framing_probe(TrainingRecipe(mode="best", finetune=True).resolved(), oblong) is None
    # an expert's views are used as given, unless the expert asks for the search
    given = TrainingRecipe(views=("full",), predict_views=("full",)).resolved()
    assert given.search_framing is False and _framing_probe(given, oblong) is None
    asked = TrainingRecipe(views=("full",), predict_views=("full",), search_framing=True).resolved()
    assert _framing_probe(asked, oblong) == type(probe)(("full",), ("whole",), ("whole",))
    zoomed = TrainingRecipe(views=("full", "zoom"), predict_views=("full",), search_framing=True).resolved()
    assert _framing_probe(zoomed, oblong) is None  # a zoom has no whole-image twin


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, "PNG")
    return buf.getvalue()


def marked_strip(mark: bool, seed: int) -> bytes:
    """A 3:1 strip of noise; with ``mark``, a bright disc near one end, outside the centre square."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(60, 120, (160, 480, 3)).astype(np.uint8)
    if mark:
        y, x = np.mgrid[0:160, 0:480]
        cx = 50 if seed % 2 else 430
        pixels[(x - cx) ** 2 + (y - 80) ** 2 < 30**2] = (250, 250, 250)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def noise_square(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (200, 200, 3)).astype(np.uint8)).save(
        buf, "PNG"
    )
    return buf.getvalue()


def test_oblong_images_with_marks_at_their_ends_choose_the_whole_image(onnx_cache: Path) -> None:
    """Through the real INT8 network: the centre square never shows the marks, the whole image does."""
    images = [marked_strip(i % 2 == 1, i // 2) for i in range(32)]
    labels = [[i % 2] for i in range(32)]
    seen: list[float] = []
    clf = fit_classifier(
        images,
        labels,
        2,
        recipe=TrainingRecipe(folds=4),
        cache_dir=onnx_cache,
        progress=lambda fraction, stage: seen.append(fraction),
    )
    assert seen == sorted(seen) and seen[-1] == 1.0  # the probe, then the rest: the bar never goes back
    whole = ",".join(whole_framed(TILE_VIEWS) or ())
    assert set(clf.view_scores_) == {",".join(TILE_VIEWS), whole}
    assert clf.view_scores_[whole] > clf.view_scores_[",".join(TILE_VIEWS)] + CHEAPER_WINS_WITHIN
    assert clf.recipe.views == clf.recipe.predict_views == whole_framed(TILE_VIEWS)
    assert clf.view_scores_[whole] >= 0.9
    # square crops of the same strips: nothing to search
    squares = [noise_square(i) for i in range(8)]
    square = fit_classifier(
        squares, [[i % 2] for i in range(8)], 2, recipe=TrainingRecipe(folds=2), cache_dir=onnx_cache
    )
    assert list(square.view_scores_) == [",".join(TILE_VIEWS)]


def test_patch_scores_are_tried_with_enough_images_and_a_forced_stack_predicts(
    photos: Photos, onnx_cache: Path, memo: MemoEmbed
) -> None:
    plain = lite0_fit(photos, onnx_cache, memo)
    reason = f"fewer than {PATCH_MIN_IMAGES} training images"
    assert plain.patch_report_ == {"kept": False, "reason": reason} and plain.patches_ is None
    # forced: tried on 24 images, the stack predicts, and its out-of-fold logits calibrate
    forced = lite0_fit(photos, onnx_cache, memo, force_patch_scores=True, patch_size=128, patch_bank=64)
    report = forced.patch_report_
    assert forced.patches_ is not None and report["kept"] and report["reason"] == "forced by the recipe"
    assert report["linear_cv_macro_f1"] == pytest.approx(plain.cv_scores_[plain.l2_], abs=1e-4)
    assert 0.0 <= report["cv_macro_f1"] <= 1.0 and forced.timings_["patch_seconds"] > 0
    assert forced.scene_holdout_logits_ is None
    assert forced.holdout_logits_.shape == (len(photos.train), len(LABELS))
    stacked = forced.decision_function(photos.test)
    assert forced.head_ is not None
    linear = np.mean(
        [forced.head_.decision_function(v) for v in forced.features(photos.test).values()], axis=0
    )
    assert not np.allclose(stacked, linear)
    np.testing.assert_allclose(stacked, forced.stacked_logits(linear, forced.patch_scores(photos.test)))
    probs = forced.predict_proba(photos.test)
    assert probs.shape == (len(photos.test), len(LABELS)) and np.allclose(probs.sum(1), 1.0)
    # a bank per label: not with more labels than PATCH_MAX_LABELS
    many = lite0_fit(
        photos, onnx_cache, memo, n_labels=PATCH_MAX_LABELS + 1, force_patch_scores=True, patch_size=128
    )
    assert many.patch_report_ == {"kept": False, "reason": f"more than {PATCH_MAX_LABELS} labels"}


@pytest.mark.parametrize("informative", [True, False])
def test_the_stack_is_kept_only_when_it_wins_out_of_fold(informative: bool) -> None:
    """Two labels, 200 images: the linear head's out-of-fold logits right 70 % of the time; patch scores
    that separate the labels are kept (with the figures), noise is not."""
    rng = np.random.default_rng(0)
    n = 200
    target = np.arange(n) % 2
    logits = np.where(rng.random(n) < 0.7, 1.0, -1.0) * np.where(target == 1, 1.0, -1.0)
    holdout = np.stack([-logits, logits], axis=1) + rng.normal(0, 0.1, (n, 2))
    separated = np.stack([target * 2.0, (1 - target) * 2.0], axis=1)
    scores = (separated if informative else 0.0) + rng.normal(0, 0.5, (n, 2))
    clf = FittedClassifier(TrainingRecipe().resolved(), 2, False)
    clf.patch_report_ = {"kept": False}
    folds = _folds(target, 5, 0, False)
    search = _Search(1e-3, holdout=holdout, holdout_index=np.arange(n))
    banks = PatchBanks(128, [np.zeros((1, 4), np.float16), np.zeros((1, 4), np.float16)])
    _maybe_stack(clf, _PatchScores(scores, np.zeros(2), banks), target, folds, search)
    report = clf.patch_report_
    assert report["kept"] is informative and (clf.patches_ is banks) is informative
    if informative:
        assert report["cv_macro_f1"] > 0.95 and report["linear_cv_macro_f1"] < 0.75
        assert report["reason"] == "better out-of-fold macro F1"
        assert np.array_equal(clf.holdout_index_, np.arange(n)) and not np.allclose(
            clf.holdout_logits_, holdout
        )
    else:
        assert report["reason"] == "the linear head alone was as good on validation"
        assert clf.stacker_ is None
