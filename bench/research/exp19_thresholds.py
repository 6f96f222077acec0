"""Threshold rules for single-label models, scored on photos the product never saw (README.md, "Learning
TEST after evaluating it; top-label thresholds").

Runs bench/heldout.py's benchmark through the product unchanged, capturing the calibrated out-of-fold
probabilities the engine chooses its thresholds on and the served model's probabilities on the held-out
photos, then prints the held-out macro F1 of each rule on the same model:

    .venv/bin/python bench/research/exp19_thresholds.py DATASETS --benchmark grocery20|grocery|magnetic

(the arguments are bench/heldout.py's; its own report is printed first).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import heldout  # noqa: E402

from visionloop.engines import classification  # noqa: E402
from visionloop.engines.metrics import choose_thresholds  # noqa: E402

captured: dict[str, np.ndarray] = {}


def spy_thresholds(
    probs: np.ndarray, truth: np.ndarray, *, top_label_only: bool = False
) -> list[float | None]:
    captured.setdefault("oof", np.asarray(probs))
    captured.setdefault("oof_truth", np.asarray(truth, dtype=bool))
    return choose_thresholds(probs, truth, top_label_only=top_label_only)


served_predict = classification.LoadedClassifier.predict_proba


def spy_predict(self: classification.LoadedClassifier, images: object) -> np.ndarray:
    probs = served_predict(self, images)  # type: ignore[arg-type]
    captured.setdefault("held", probs)  # the first call: the served model on the held-out photos
    return probs


classification.choose_thresholds = spy_thresholds  # type: ignore[assignment]
classification.LoadedClassifier.predict_proba = spy_predict  # type: ignore[method-assign]


def macro_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    scores = []
    for j in range(truth.shape[1]):
        if truth[:, j].any():
            tp = (pred[:, j] & truth[:, j]).sum()
            wrong = (pred[:, j] ^ truth[:, j]).sum()
            scores.append(2 * tp / max(1, 2 * tp + wrong))
    return float(np.mean(scores))


def cut(thresholds: list[float | None]) -> np.ndarray:
    return np.array([0.5 if t is None else t for t in thresholds])


def main() -> None:
    heldout.main()
    args = sys.argv[1:]
    benchmark = args[args.index("--benchmark") + 1] if "--benchmark" in args else "grocery20"
    root = Path(args[0])
    if benchmark == "magnetic":
        train, held, _ = heldout.magnetic(root)
    else:
        train, held, _ = heldout.grocery(root, benchmark == "grocery20")
    oof, oof_truth, probs = captured["oof"], captured["oof_truth"], captured["held"]
    labels = sorted(k for k, v in train.items() if v)  # the model's labels: the trained ones, sorted
    y = np.array([labels.index(k) for k, v in held.items() for _ in v])
    truth = np.eye(probs.shape[1], dtype=bool)[y]
    top = np.eye(probs.shape[1], dtype=bool)[probs.argmax(1)]
    every = cut(choose_thresholds(oof, oof_truth))
    top_only = cut(choose_thresholds(oof, oof_truth, top_label_only=True))
    grid = np.linspace(0.02, 0.98, 97)
    common = grid[int(np.argmax([macro_f1(oof >= t, oof_truth) for t in grid]))]
    rules = {
        "chosen over every image (before)": probs >= every,
        "chosen where the label came top (now)": probs >= top_only,
        "top label only (no thresholds)": top,
        f"one common threshold ({common:.2f})": probs >= common,
        "per label, halfway to the common one": probs >= (every + common) / 2,
        "per label, capped at 0.5": probs >= np.minimum(every, 0.5),
    }
    print(f"\nheld-out macro F1 of threshold rules on the same model ({benchmark}):")
    for name, pred in rules.items():
        print(f"  {name:40s} {macro_f1(pred, truth):.3f}")


if __name__ == "__main__":
    main()
