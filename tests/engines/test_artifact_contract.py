"""The artifact contract, through the real engine, for every kind of classifier artifact: train with
ClassificationEngine.train, keep only the files it returns, load them in a fresh process and predict
there: the probabilities must equal the training process's (a linear head on frozen views writes
``weights.npz``; a fine-tuned network writes ``model.onnx``; best mode used to crash looking for
``weights.npz`` when fine-tuning won)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from visionloop.core.entities import TaskType
from visionloop.core.ports import TrainingExample, TrainingSpec
from visionloop.engines.classification import ClassificationEngine

LABELS = ("Banana", "Kiwi", "Tomato")
PER_LABEL = 14  # 10-11 training images a label: enough for thresholds chosen out of fold


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    root = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "grocery-produce"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the shared datasets are not on this machine")
    out = {}
    for label in LABELS:
        files = sorted((root / label).glob("train_*.jpg"))
        for f in files[:: max(1, len(files) // PER_LABEL)][:PER_LABEL]:
            out[f"{label}/{f.name}"] = f.read_bytes()
    return out


def spec(photos: dict[str, bytes], task: TaskType, mode: str, **hyperparams: Any) -> TrainingSpec:
    train, test = [], []
    for i, name in enumerate(sorted(photos)):
        label = name.split("/")[0]
        labels = (label, "Fruit") if task is TaskType.MULTI_LABEL and label != "Tomato" else (label,)
        group = f"{label}-{i // 2}"  # pairs of neighbouring shots
        (test if i % 4 == 3 else train).append(TrainingExample(name, labels, group))
    all_labels = sorted({lab for ex in train + test for lab in ex.labels})
    return TrainingSpec(
        project="p",
        version="v1",
        version_arn="arn:aws:rekognition:us-east-1:123456789012:project/p/version/v1/1",
        task=task,
        labels=tuple(all_labels),
        train=tuple(train),
        test=tuple(test),
        backbone="auto",
        mode=mode,
        seed=0,
        max_seconds=None,
        hyperparams=hyperparams,
        grouping_warnings=("a warning from grouping",),
    )


KINDS = {
    # kind: (task, mode, hyper-parameters, the classifier file it must write)
    "linear": (TaskType.CLASSIFICATION, "fast", {"folds": 3}, "weights.npz"),
    "linear-multi-label": (TaskType.MULTI_LABEL, "fast", {"folds": 3}, "weights.npz"),
    # the served head learned TEST after the evaluation; the evaluated one is kept under evaluated/
    "linear-learned-test": (
        TaskType.CLASSIFICATION,
        "fast",
        {"folds": 3, "refit_on_test": True},
        "weights.npz",
    ),
    "linear-int8": (
        TaskType.CLASSIFICATION,
        "fast",
        {"folds": 3, "backbones": ["efficientnet-lite0-int8"]},
        "weights.npz",
    ),
    # patch scores stacked on the linear head: banks and stacker in weights.npz, the pyramid at load
    "linear-patch-scores": (
        TaskType.CLASSIFICATION,
        "fast",
        {"folds": 3, "force_patch_scores": True, "patch_size": 128, "patch_bank": 64},
        "weights.npz",
    ),
    "finetuned": (
        TaskType.CLASSIFICATION,
        "best",
        {
            "finetune": True,
            "force_finetune": True,
            "epochs": 1,
            "folds": 2,
            "views": ["full"],
            "predict_views": ["full"],
        },
        "model.onnx",
    ),
}

FRESH = """
import json, sys
from pathlib import Path
import numpy as np
from visionloop.engines.classification import ClassificationEngine
art, cache, images = Path(sys.argv[1]), sys.argv[2], json.loads(Path(sys.argv[3]).read_text())
files = {p.relative_to(art).as_posix(): p.read_bytes() for p in art.rglob("*") if p.is_file()}
model = ClassificationEngine(cache, num_threads=1).load(files)
probs = model.predict([Path(p).read_bytes() for p in images])
print(json.dumps({"labels": list(model.labels), "probs": probs}))
"""


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_train_save_load_in_a_fresh_process_and_predict(
    kind: str, photos: dict[str, bytes], tmp_path: Path, onnx_cache: Path
) -> None:
    task, mode, hyperparams, weights = KINDS[kind]
    cache = tmp_path / "cache"
    (cache / "onnx").parent.mkdir(parents=True, exist_ok=True)
    (cache / "onnx").symlink_to(onnx_cache, target_is_directory=True)  # reuse the session's exports
    engine = ClassificationEngine(cache, num_threads=1)
    s = spec(photos, task, mode, **hyperparams)
    trained = engine.train(s, photos.__getitem__, lambda fraction, stage: None)
    assert weights in trained.files and "model.json" in trained.files and "classifier.json" in trained.files
    evaluation = trained.evaluation
    assert evaluation["threshold_source"] == "validation"  # chosen out of fold, only measured on TEST
    assert evaluation["n_groups"] == len({ex.group for ex in s.test})
    assert "a warning from grouping" in evaluation["warnings"]
    assert all(0.0 < t < 1.0 for t in trained.thresholds.values())
    # 10-11 images a label: too few for scenes, so the calibrator saw the grouped folds only
    assert trained.params["calibrated_on"] == ["grouped folds"]

    patches = trained.params["classifier"]["patches"]
    assert (patches is not None) is (kind == "linear-patch-scores")
    if patches is not None:
        report = trained.params["classifier"]["patch_scores"]
        assert report["kept"] and report["reason"] == "forced by the recipe", report
        assert patches["size"] == 128 and 0.0 <= report["cv_macro_f1"] <= 1.0
    assert trained.params["refit_on_test"] is (kind == "linear-learned-test")
    assert ("evaluated/weights.npz" in trained.files) is (kind == "linear-learned-test")
    art = tmp_path / "artifact"
    art.mkdir()
    for name, data in trained.files.items():
        (art / name).parent.mkdir(exist_ok=True)
        (art / name).write_bytes(data)
    images = sorted(photos)[:6]
    for i, name in enumerate(images):
        (tmp_path / f"{i}.jpg").write_bytes(photos[name])
    listing = tmp_path / "images.json"
    listing.write_text(json.dumps([str(tmp_path / f"{i}.jpg") for i in range(len(images))]))
    done = subprocess.run(
        [sys.executable, "-c", FRESH, str(art), str(cache), str(listing)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    here = engine.load(trained.files)
    assert fresh["labels"] == list(s.labels) == list(here.labels)
    np.testing.assert_allclose(fresh["probs"], here.predict([photos[n] for n in images]), atol=1e-6)
    probs = np.array(fresh["probs"])
    assert probs.shape == (len(images), len(s.labels)) and np.isfinite(probs).all()
    assert probs.max() < 1.0  # calibrated confidences stop short of certainty


def test_with_few_training_images_the_thresholds_are_tuned_on_test_and_said_so(
    photos: dict[str, bytes], tmp_path: Path, onnx_cache: Path
) -> None:
    few = {name: data for name, data in photos.items() if int(name.split("_")[-1][:3]) % 3 == 0}
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "onnx").symlink_to(onnx_cache, target_is_directory=True)
    s = spec(few, TaskType.CLASSIFICATION, "fast", folds=3)
    assert max(sum(1 for ex in s.train if ex.labels == (lab,)) for lab in LABELS) < 10
    trained = ClassificationEngine(cache, num_threads=1).train(s, few.__getitem__, lambda f, stage: None)
    assert trained.evaluation["threshold_source"] == "test"
    assert all(0.0 < t < 1.0 for t in trained.thresholds.values())
