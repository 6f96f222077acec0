"""The artifact contract, through the real engine, for every kind of classifier artifact: train with
ClassificationEngine.train, keep only the files it returns, load them in a fresh process and predict
there: the probabilities and logits must equal the training process's (a linear head on frozen views
writes ``weights.npz``; a fine-tuned network writes ``model.onnx``; best mode used to crash looking for
``weights.npz`` when fine-tuning won). A single-label linear head on frozen views also records its
cascade (two views first), and both of the cascade's stages must predict alike in a fresh process."""

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


@pytest.fixture(scope="module")
def new_photos(photos: dict[str, bytes]) -> list[bytes]:
    """Two photos of each label from the authors' later session (``val_*``): never trained on, so the
    model is unsure of some of them (``photos`` skips when the data set is absent)."""
    root = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "grocery-produce"
    return [f.read_bytes() for label in LABELS for f in sorted((root / label).glob("val_*.jpg"))[:2]]


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
data = [Path(p).read_bytes() for p in images]
probs = model.predict(data)
logits = model.classifier.decision_function(data).tolist()
print(json.dumps({"labels": list(model.labels), "probs": probs, "logits": logits}))
"""


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_train_save_load_in_a_fresh_process_and_predict(
    kind: str, photos: dict[str, bytes], new_photos: list[bytes], tmp_path: Path, onnx_cache: Path
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
    cascade = trained.params["classifier"]["cascade"]
    if kind in CASCADED:  # single-label, frozen views, no patch scores: two views may answer alone
        assert cascade["views"] == ["full", "full-flip"] and cascade["min_top_probability"] is not None
    else:
        assert cascade is None or cascade["min_top_probability"] is None, cascade
    images = [photos[n] for n in sorted(photos)[:3]] + new_photos
    for i, data in enumerate(images):
        (tmp_path / f"{i}.jpg").write_bytes(data)
    listing = tmp_path / "images.json"
    listing.write_text(json.dumps([str(tmp_path / f"{i}.jpg") for i in range(len(images))]))
    files = dict(trained.files)
    here = engine.load(files)
    served = here.predict(images)
    fresh = predict_in_a_fresh_process(files, tmp_path / "artifact", cache, listing)
    assert fresh["labels"] == list(s.labels) == list(here.labels)
    np.testing.assert_allclose(fresh["probs"], served, atol=1e-6)
    logits = here.classifier.decision_function(images)
    np.testing.assert_allclose(fresh["logits"], logits, rtol=1e-6, atol=1e-5)
    probs = np.array(fresh["probs"])
    assert probs.shape == (len(images), len(s.labels)) and np.isfinite(probs).all()
    assert probs.max() < 1.0  # calibrated confidences stop short of certainty
    if kind == "linear":
        check_both_stages_of_the_cascade(engine, files, images, tmp_path, cache, listing)


CASCADED = {"linear", "linear-learned-test", "linear-int8"}


def check_both_stages_of_the_cascade(
    engine: ClassificationEngine,
    files: dict[str, bytes],
    images: list[bytes],
    tmp_path: Path,
    cache: Path,
    listing: Path,
) -> None:
    """The cascade's threshold, edited in classifier.json: at 0 the first two views answer every image,
    at 1 none, so every image goes on to every view and must get the answer of a model without a
    cascade, in this process and in a fresh one."""
    meta = json.loads(files["classifier.json"])

    def logits(threshold: float | None) -> tuple[dict[str, bytes], Any]:
        params = dict(meta["params"])
        if threshold is None:
            del params["cascade"]  # an artifact saved before the cascade: every view for every image
        else:
            params["cascade"] = {**params["cascade"], "min_top_probability": threshold}
        edited = {**files, "classifier.json": json.dumps({**meta, "params": params}).encode()}
        return edited, engine.load(edited).classifier.decision_function(images)

    _, first_views = logits(0.0)
    _, every_view = logits(None)
    edited, second_stage = logits(1.0)
    assert np.abs(first_views - every_view).max() > 1e-3  # the two stages answer differently here
    np.testing.assert_allclose(second_stage, every_view, rtol=1e-9, atol=1e-9)
    fresh = predict_in_a_fresh_process(edited, tmp_path / "second-stage", cache, listing)
    np.testing.assert_allclose(fresh["logits"], second_stage, rtol=1e-6, atol=1e-5)


def predict_in_a_fresh_process(files: dict[str, bytes], art: Path, cache: Path, listing: Path) -> Any:
    art.mkdir()
    for name, data in files.items():
        (art / name).parent.mkdir(exist_ok=True)
        (art / name).write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-c", FRESH, str(art), str(cache), str(listing)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


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
