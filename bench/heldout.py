"""Is a trained classifier right on photos it has never seen, and did its own evaluation say so?

Trains through the product (folder import, the automatic grouped TRAIN/TEST split, a training job) on
photos of one session only, then predicts photos of a later session (or of other tiles) that the
product never saw, and prints side by side what the product reported and what was measured:

    .venv/bin/python bench/heldout.py DATASETS_DIR [--benchmark grocery20|grocery|magnetic] [--mode fast|best]

Benchmarks (fixed, printed with their split):
- grocery20: grocery-produce, the 20 labels that have photos in both of the authors' sessions and the
  most ``train_*`` photos, 31 of those per label drawn with random.Random(0) → imported as TRAIN; the
  labels' ``val_*`` photos (a later session) are the held-out photos.
- grocery: every ``train_*`` photo of the 34 labels → TRAIN; every ``val_*`` photo (30 labels) held out.
- magnetic: magnetic-tile, Free vs Defect (every other class); tiles = files whose ids lie within 200 of
  each other in a class (the same tile under several lightings); 20% of the tiles per class, drawn
  with random.Random(f"{split}/{label}") (``--split``, 0 unless given), are held out, the others → TRAIN.
  Only 31 tiles are held out, so compare recipes on several splits.

Figures: the product's own macro F1 (at its assumed thresholds) with its 95% interval, measured on the
TEST images it split off the TRAIN photos; on the held-out photos: macro F1 at the assumed thresholds
and top-1, accuracy, ECE of the top label's confidence (and of the head as evaluated, when the served
head also learned TEST); the share of wrong predictions whose top
confidence is below --min-confidence (they would go to human review), and what the product's review
guide suggests for min_confidence with what that setting caught held out; training wall time.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from train_classification import files_by_label, link_tree  # bench/ is on sys.path when run

from visionloop.bootstrap import build_engine, build_services
from visionloop.core.datasets import import_folder
from visionloop.core.projects import create_project
from visionloop.core.training import TrainingOptions, as_evaluated, load_artifact, request_training
from visionloop.engines.artifact import FloatArray, sure_enough
from visionloop.engines.calibration import expected_calibration_error, top_label_confidence
from visionloop.engines.classification import LoadedClassifier
from visionloop.engines.metrics import evaluate_classification
from visionloop.engines.recipe import CASCADE_VIEWS
from visionloop.settings import load_settings
from visionloop.workflows.worker import run_job

Files = dict[str, list[Path]]


def grocery(root: Path, balanced: bool) -> tuple[Files, Files, str]:
    files = files_by_label(root / "grocery-produce")
    train = {k: [p for p in v if p.name.startswith("train_")] for k, v in files.items()}
    held = {k: [p for p in v if p.name.startswith("val_")] for k, v in files.items()}
    if not balanced:
        held = {k: v for k, v in held.items() if v}
        note = "grocery-produce: every train_* photo → TRAIN; every val_* photo (a later session) held out"
        return train, held, note
    labels = sorted(sorted((k for k in train if held[k]), key=lambda k: (-len(train[k]), k))[:20])
    train = {k: sorted(random.Random(0).sample(train[k], min(31, len(train[k])))) for k in labels}
    note = "grocery-produce, 20 labels, 31 train_* photos each (random.Random(0)) → TRAIN; val_* held out"
    return train, {k: held[k] for k in labels}, note


def magnetic(root: Path, split: int = 0) -> tuple[Files, Files, str]:
    binary: dict[str, list[list[Path]]] = {"Free": [], "Defect": []}
    for label, paths in files_by_label(root / "magnetic-tile").items():
        by_prefix: dict[str, list[tuple[int, Path]]] = {}
        for p in paths:
            prefix = re.sub(r"\d+", "#", re.sub(r"\d+$", "", p.stem))  # exp1_num_ / exp2_num_: lightings
            by_prefix.setdefault(prefix, []).append((int(re.findall(r"\d+", p.stem)[-1]), p))
        tiles: list[list[Path]] = []
        for numbered in by_prefix.values():
            previous = None
            for number, p in sorted(numbered):
                if previous is None or number - previous > 200:
                    tiles.append([])
                tiles[-1].append(p)
                previous = number
        binary["Free" if label == "Free" else "Defect"].extend(tiles)
    train: Files = {}
    held: Files = {}
    for label, tiles in binary.items():
        rng = random.Random(f"{split}/{label}")
        chosen = set(rng.sample(range(len(tiles)), round(0.2 * len(tiles))))
        held[label] = [p for i, t in enumerate(tiles) if i in chosen for p in t]
        train[label] = [p for i, t in enumerate(tiles) if i not in chosen for p in t]
    n_tiles = sum(len(t) for t in binary.values())
    note = (
        f"magnetic-tile Free vs Defect, {n_tiles} tiles (ids within 200), 20% of tiles per class held out "
        f"(split {split})"
    )
    return train, held, note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", type=Path)
    ap.add_argument("--benchmark", choices=["grocery20", "grocery", "magnetic"], default="grocery20")
    ap.add_argument("--mode", choices=["fast", "best"], default="fast")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--split", type=int, default=0, help="magnetic: which tiles are held out")
    ap.add_argument("--min-confidence", type=float, default=70.0)
    ap.add_argument("--split-by-scene", action="store_true", help="the split_by_scene setting")
    ap.add_argument("--hyperparams", default="{}", help="an expert's hyper-parameters, as JSON")
    ap.add_argument(
        "--cascade-sweep",
        action="store_true",
        help="also measure the held-out photos with the cascade at other thresholds",
    )
    args = ap.parse_args()
    if not (args.datasets / "grocery-produce").is_dir():
        sys.exit(f"{args.datasets} has no grocery-produce folder")
    if args.benchmark == "magnetic":
        train, held, note = magnetic(args.datasets, args.split)
    else:
        train, held, note = grocery(args.datasets, args.benchmark == "grocery20")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        overrides = {"data_dir": str(work / "var"), "workers": 0, "split_by_scene": args.split_by_scene}
        settings = load_settings(overrides, environ={})
        svc = build_services(settings)
        create_project(svc, "bench")
        import_folder(svc, "bench", str(link_tree(work / "train", train)))
        opts = TrainingOptions(
            mode=args.mode,
            seed=args.seed,
            max_seconds=args.max_seconds,
            hyperparams=json.loads(args.hyperparams),
        )
        _, job = request_training(svc, "bench", opts)
        claimed = svc.repo.claim_job(svc.clock.now(), job.id)
        assert claimed is not None
        engine = build_engine(settings)
        started = time.perf_counter()
        run_job(svc, engine, claimed, settings.region, settings.account_id)
        train_seconds = time.perf_counter() - started
        version = svc.repo.get_version_by_id(claimed.version_id or 0)
        if version.evaluation is None:
            sys.exit(f"training failed: {version.status_message}")
        ev: dict[str, Any] = dict(version.evaluation)
        model = engine.load(load_artifact(svc, version))
        assert isinstance(model, LoadedClassifier)
        labels = list(model.labels)
        held_paths = [(labels.index(k), p) for k, v in held.items() for p in v]
        started = time.perf_counter()
        held_images = [p.read_bytes() for _, p in held_paths]
        probs = model.predict_proba(held_images)
        predict_seconds = time.perf_counter() - started
        # the cascade (engines.selection._choose_cascade): the same model with every view for every image
        cascade = getattr(model.classifier, "cascade_", None)
        if cascade is not None:
            clf_model = model.classifier
            started = time.perf_counter()
            clf_model.cascade_ = None
            every_view_probs = model.predict_proba(held_images)
            every_view_seconds = time.perf_counter() - started
            clf_model.cascade_ = cascade
            early_share = float(np.mean(sure_enough(first_logits(model, held_images), cascade)))
        # the head as evaluated (before it learned the TEST images too, when it did)
        evaluated = engine.load(as_evaluated(load_artifact(svc, version)))
        assert isinstance(evaluated, LoadedClassifier)
        evaluated_probs = evaluated.predict_proba(held_images)
        truth = np.array([y for y, _ in held_paths])
        thresholds = [version.thresholds[k] for k in labels]
        measured, before = (
            evaluate_classification(truth.tolist(), p, labels, thresholds=thresholds, n_resamples=0)
            for p in (probs, evaluated_probs)
        )
        confidence, correct = top_label_confidence(probs, truth)
        wrong = ~correct
        to_review = confidence * 100 < args.min_confidence
        params: dict[str, Any] = dict(version.params)
        clf: dict[str, Any] = dict(params.get("classifier") or {})
        recipe = clf.get("recipe", {})
        interval = ev.get("macro_f1_interval") or {}
        lo, hi = interval.get("lower", float("nan")), interval.get("upper", float("nan"))
        held_f1 = measured.macro_f1 or 0.0
        split = "by scene" if args.split_by_scene else "by group"
        print(f"benchmark   : {args.benchmark} ({note}), mode {args.mode}, seed {args.seed}, split {split}")
        print(
            f"images      : {sum(map(len, train.values()))} photos imported as TRAIN "
            f"(the product split off {ev['n_images']} for its TEST, {ev.get('n_groups')} groups); "
            f"{len(held_paths)} held out"
        )
        views = recipe.get("views") or []
        framing = "of the whole image" if version.params.get("framing") == "whole image" else "centred"
        print(
            f"recipe      : backbones {recipe.get('backbones')}, {len(views)} views {framing}, "
            f"L2 {clf.get('l2')}; CV macro F1 per backbone set {clf.get('backbones_cv_macro_f1')}; "
            f"fine-tuning {clf.get('finetune') or 'off'}; patch scores {clf.get('patch_scores') or 'off'}; "
            f"{clf.get('cv_groups')} groups in the CV folds"
        )
        cut = sorted(version.thresholds.values())
        print(
            f"thresholds  : {cut[0]:.3f}–{cut[len(cut) // 2]:.3f}–{cut[-1]:.3f} (min–median–max); "
            f"the served head learned the TEST images too: {bool(params.get('refit_on_test'))}"
        )
        print(f"training    : {train_seconds:.1f} s wall (timings {params.get('timings')})")
        print(f"predicting  : {len(held_paths) / predict_seconds:.1f} images/s in one process")
        if cascade is not None:
            every = evaluate_classification(
                truth.tolist(), every_view_probs, labels, thresholds=thresholds, n_resamples=0
            )
            report = clf.get("cascade") or {}
            print(
                f"cascade     : the first {CASCADE_VIEWS} views answer alone at a top probability of "
                f"{cascade:g} or more ({report.get('answered_by_first_views_cv', float('nan')):.0%} of the "
                f"out-of-fold images, {early_share:.0%} of the held-out ones); every view for every image: "
                f"macro F1 {every.macro_f1 or 0.0:.3f} (top-1 {every.top1_macro_f1 or float('nan'):.3f}), "
                f"{len(held_paths) / every_view_seconds:.1f} images/s"
            )
        else:
            print(f"cascade     : none ({clf.get('cascade') or 'not applicable'})")
        if args.cascade_sweep:
            sweep(model, held_images, truth, labels, thresholds)
        print(
            f"reported    : macro F1 {ev['macro_f1']:.3f} (95% {lo:.3f}–{hi:.3f}), top-1 macro F1 "
            f"{ev.get('top1_macro_f1') or float('nan'):.3f}, ECE {ev['calibration']['ece']:.3f} "
            f"(thresholds from {ev.get('threshold_source')}); on new scenes (cross-validation) "
            f"{ev.get('new_scenes_macro_f1') or float('nan'):.3f}"
        )
        print(
            f"held out    : macro F1 {held_f1:.3f} at the assumed thresholds, top-1 macro F1 "
            f"{measured.top1_macro_f1 or float('nan'):.3f}, accuracy {measured.accuracy:.3f}, "
            f"ECE {expected_calibration_error(confidence, correct):.3f} (mean top confidence "
            f"{confidence.mean():.3f})"
        )
        if params.get("refit_on_test"):
            print(
                f"as evaluated: macro F1 {before.macro_f1 or 0.0:.3f} at the assumed thresholds, top-1 "
                f"{before.top1_macro_f1 or float('nan'):.3f}, ECE "
                f"{expected_calibration_error(*top_label_confidence(evaluated_probs, truth)):.3f} "
                "(the head before it learned the TEST images)"
            )
        inside = lo <= held_f1 <= hi
        print(
            f"honesty     : reported − held out = {ev['macro_f1'] - held_f1:+.3f}; "
            f"the interval {'contains' if inside else 'does NOT contain'} the held-out F1"
        )
        expected = ev.get("new_photos_macro_f1") or {}
        if expected:
            low, high = expected["lower"], expected["upper"]
            verdict = "contains" if low <= held_f1 <= high else "does NOT contain"
            print(f"new photos  : {low:.3f}–{high:.3f} ({expected['basis']}) {verdict} the held-out F1")
        print(
            f"review      : {int((wrong & to_review).sum())} of {int(wrong.sum())} wrong predictions "
            f"({(wrong & to_review).sum() / max(1, wrong.sum()):.0%}) and {int((~wrong & to_review).sum())} "
            f"of {int((~wrong).sum())} right ones have a top confidence below {args.min_confidence:g}%"
        )
        basis = (ev.get("review_guide") or {}).get("basis")
        guide = (ev.get("review_guide") or {}).get("suggested")
        if guide:
            level = guide["min_confidence"]
            caught = confidence[wrong] * 100 < level
            share = caught.mean() if len(caught) else 0.0
            sent = confidence * 100 < level
            print(
                f"review guide: suggests min_confidence {level:g} ({basis}: catches "
                f"{guide['wrong_caught']:.0%} of the wrong answers, sends {guide['sent']:.0%}); held out it "
                f"caught {int(caught.sum())} of {int(wrong.sum())} ({share:.0%}) "
                f"and sent {sent.mean():.0%} of all answers"
            )
        for w in ev.get("warnings", []):
            print(f"warning     : {w}")


def first_logits(model: LoadedClassifier, images: list[bytes]) -> FloatArray:
    """The loaded classifier's mean logits over its first views (the cascade's first stage)."""
    logits: FloatArray = np.mean(model.classifier.first_view_logits(images), axis=0)
    return logits


def sweep(
    model: LoadedClassifier,
    images: list[bytes],
    truth: np.ndarray,
    labels: list[str],
    thresholds: list[float],
) -> None:
    """Held-out macro F1 and the share answered by the first views, the cascade at other thresholds."""
    clf = model.classifier
    if clf.kind_ != "linear" or clf.patches_ is not None:
        return
    kept = clf.cascade_
    first = first_logits(model, images)
    for t in (0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99):
        clf.cascade_ = t
        probs = model.predict_proba(images)
        m = evaluate_classification(truth.tolist(), probs, labels, thresholds=thresholds, n_resamples=0)
        early = float(np.mean(sure_enough(first, t)))
        print(
            f"  cascade at {t:g}: held-out macro F1 {m.macro_f1 or 0.0:.3f}, "
            f"top-1 {m.top1_macro_f1 or 0.0:.3f}, {early:.0%} answered by the first views"
        )
    clf.cascade_ = kept


if __name__ == "__main__":
    main()
