"""Partial fine-tuning of EfficientNet-Lite0 on cached activations, on 4 grocery labels × 10 photos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from visionloop.engines.artifact import FittedClassifier
from visionloop.engines.backbones import Backbone
from visionloop.engines.finetune import TailFinetuner, prefix_module
from visionloop.engines.recipe import TrainingRecipe
from visionloop.engines.selection import fit_classifier
from visionloop.errors import InvalidInput, NotFitted, Unavailable

LABELS = ("Banana", "Carrots", "Kiwi", "Tomato")


class Photos:
    """10 photos per label spread over its sorted files; 4 of each 10 go to test."""

    def __init__(self, root: Path) -> None:
        self.train: list[bytes] = []
        self.test: list[bytes] = []
        y_train: list[int] = []
        y_test: list[int] = []
        for i, label in enumerate(LABELS):
            files = sorted((root / label).glob("*.jpg"))
            for j, f in enumerate(files[:: max(1, len(files) // 10)][:10]):
                (self.test if j % 5 in (1, 3) else self.train).append(f.read_bytes())
                (y_test if j % 5 in (1, 3) else y_train).append(i)
        self.y_train = np.array(y_train)
        self.y_test = np.array(y_test)


@pytest.fixture(scope="module")
def photos() -> Photos:
    root = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "grocery-produce"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the shared datasets are not on this machine")
    return Photos(root)


@pytest.fixture(scope="module")
def module(lite0: Backbone) -> Any:
    return lite0.torch_module()


@pytest.fixture(scope="module")
def acts(photos: Photos, lite0: Backbone, module: Any) -> dict[str, list[np.ndarray]]:
    """Activations before the last block of the train and test photos, plain and mirrored."""
    import torch

    prefix = prefix_module(module, 1)
    out: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    with torch.no_grad():
        for split, images in (("train", photos.train), ("test", photos.test)):
            for flip in (False, True):
                batch = torch.from_numpy(lite0.preprocess(images, flip=flip))
                out[split].append(prefix(batch)[0].numpy().astype(np.float16))
    return out


def tuner(**kwargs: Any) -> TailFinetuner:
    return TailFinetuner(**{"n_blocks": 1, "epochs": 2, "lr": 3e-4, "n_labels": 4, **kwargs})


def test_prefix_gives_activations_and_the_frozen_embedding(lite0: Backbone, module: Any) -> None:
    import torch

    batch = lite0.preprocess([_jpeg()])
    with torch.no_grad():
        acts, emb = prefix_module(module, 1)(torch.from_numpy(batch))
    assert acts.shape == (1, 192, 7, 7)  # Lite0 at 224 px before its last block
    np.testing.assert_allclose(emb.numpy(), lite0.forward(batch)[0], atol=1e-4)


def test_finetuning_learns_and_is_deterministic(
    acts: dict[str, list[np.ndarray]], photos: Photos, module: Any
) -> None:
    a = tuner().fit(module, acts["train"], photos.y_train)
    b = tuner().fit(module, acts["train"], photos.y_train)
    logits = a.decision_function(acts["test"])
    assert logits.shape == (len(photos.y_test), 4)
    assert (logits.argmax(1) == photos.y_test).mean() >= 0.75  # chance is 0.25
    np.testing.assert_array_equal(logits, b.decision_function(acts["test"]))
    assert a.epochs_run_ == 2
    assert a.get_params()["kind"] == "finetune"


def test_the_source_module_is_not_modified(
    acts: dict[str, list[np.ndarray]], photos: Photos, module: Any
) -> None:
    before = {k: v.clone() for k, v in module.state_dict().items()}
    tuner(epochs=1).fit(module, acts["train"], photos.y_train)
    after = module.state_dict()
    assert all((before[k] == after[k]).all() for k in before)


def test_multi_label(acts: dict[str, list[np.ndarray]], photos: Photos, module: Any) -> None:
    y = np.stack([photos.y_train == 0, photos.y_train >= 2], axis=1).astype(int)
    model = tuner(n_labels=2, multi_label=True).fit(module, acts["train"], y)
    truth = np.stack([photos.y_test == 0, photos.y_test >= 2], axis=1)
    assert ((model.decision_function(acts["test"]) > 0) == truth).mean() > 0.8


def test_a_deadline_stops_after_the_current_epoch(
    acts: dict[str, list[np.ndarray]], photos: Photos, module: Any
) -> None:
    model = tuner(epochs=5).fit(module, acts["train"], photos.y_train, deadline=lambda: True)
    assert model.epochs_run_ == 1


def test_not_fitted_and_bad_parameters(
    acts: dict[str, list[np.ndarray]], photos: Photos, module: Any
) -> None:
    with pytest.raises(NotFitted):
        tuner().decision_function(acts["test"])
    with pytest.raises(NotFitted):
        tuner().full_module(module)
    for bad in ({"epochs": 0}, {"lr": -1.0}, {"label_smoothing": 1.0}, {"n_blocks": 99}, {"batch_size": 0}):
        with pytest.raises(InvalidInput):
            tuner(**bad).fit(module, acts["train"], photos.y_train)
    with pytest.raises(InvalidInput, match="shape"):
        tuner().fit(module, acts["train"], photos.y_train[:-1])


def test_a_backbone_that_is_not_efficientnet_lite_is_refused() -> None:
    import torch

    with pytest.raises(Unavailable):
        prefix_module(torch.nn.Linear(2, 2), 1)


@pytest.fixture(scope="module")
def best(photos: Photos, onnx_cache: Path) -> FittedClassifier:
    """The best-mode path on Lite0, small, with fine-tuning kept whatever validation says."""
    recipe = TrainingRecipe(
        mode="best",
        backbones=("efficientnet-lite0",),
        views=("full", "full-flip"),
        folds=2,
        epochs=2,
        lr=3e-4,
        l2=1e-3,
        finetune=True,
        force_finetune=True,
    )
    return fit_classifier(
        photos.train, [[int(y)] for y in photos.y_train], 4, recipe=recipe, cache_dir=onnx_cache
    )


def test_best_mode_fine_tunes_exports_and_reloads_identically(
    best: FittedClassifier, photos: Photos, onnx_cache: Path, tmp_path: Path
) -> None:
    assert best.kind_ == "finetuned"
    report = best.get_params()["finetune"]
    assert report["kept"] and report["folds_done"] == 2
    assert {"cv_macro_f1", "linear_cv_macro_f1"} <= set(report)
    proba = best.predict_proba(photos.test)
    assert (proba.argmax(1) == photos.y_test).mean() >= 0.75
    assert best.holdout_logits_.shape == (len(photos.train), 4)
    assert best.save(tmp_path / "model") == ["classifier.json", "model.onnx"]
    np.save(tmp_path / "images.npy", np.array(photos.test[:4], dtype=object), allow_pickle=True)
    code = (
        "import sys, numpy as np\n"
        "from visionloop.engines.artifact import FittedClassifier\n"
        "clf = FittedClassifier.load(sys.argv[1], cache_dir=sys.argv[2])\n"
        "np.save(sys.argv[4], clf.predict_proba(list(np.load(sys.argv[3], allow_pickle=True))))\n"
    )
    args = [str(tmp_path / "model"), str(onnx_cache), str(tmp_path / "images.npy"), str(tmp_path / "p.npy")]
    subprocess.run([sys.executable, "-c", code, *args], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), proba[:4])


def test_fine_tuning_needs_one_backbone(photos: Photos) -> None:
    recipe = TrainingRecipe(
        mode="best", backbones=("efficientnet-lite0", "efficientnet-lite2"), finetune=True
    )
    with pytest.raises(InvalidInput, match="one backbone"):
        fit_classifier(photos.train, [[int(y)] for y in photos.y_train], 4, recipe=recipe)


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 120, 40)).save(buf, "JPEG")
    return buf.getvalue()


def test_best_mode_keeps_the_linear_head_when_the_budget_is_spent(
    best: FittedClassifier, photos: Photos, onnx_cache: Path
) -> None:
    import time

    recipe = TrainingRecipe(
        mode="best",
        backbones=("efficientnet-lite0",),
        views=("full",),
        epochs=50,
        max_seconds=1.0,
        finetune=True,
    )
    started = time.monotonic()
    clf = fit_classifier(
        photos.train, [[int(y)] for y in photos.y_train], 4, recipe=recipe, cache_dir=onnx_cache
    )
    assert time.monotonic() - started < 30  # 50 epochs × 5 folds would take minutes
    assert clf.kind_ == "linear" and clf.stopped_early_
    assert clf.get_params()["finetune"]["reason"] == "not enough time to cross-validate fine-tuning"
    assert (clf.predict_proba(photos.test).argmax(1) == photos.y_test).mean() >= 0.5
