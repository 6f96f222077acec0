"""Train and evaluate a classifier on a folder-per-label data set, through the product's own import,
training job and evaluation, and print wall time per stage, embedding speed, macro F1 with its 95%
interval and the per-label table.

    .venv/bin/python bench/train_classification.py DATASET_DIR [--subset balanced20|all]
        [--split-seed 0] [--mode fast|best] [--backbone efficientnet-lite0] [--max-seconds S]
        [--binary LABEL] [--group-consecutive N | --group-by-number GAP]

--subset balanced20 (the issue's benchmark): the 20 labels with the most images (ties by name), from
each min(40, n) photos drawn with random.Random(0) from the sorted file list, then 9 per label to TEST
by a shuffle seeded with f"{split_seed}/{label}" and the rest to TRAIN.
--subset all: every image, TEST = a stratified 20% split with --split-seed (the product's own split),
or with --group-consecutive N, blocks of N consecutive files per label (sorted by name; for
grocery-produce's consecutive shots of one display) go to TEST together; with --group-by-number GAP,
files whose trailing numbers are within GAP of each other (magnetic-tile: neighbouring ids are the same
tile under several lightings; GAP 200) go to TEST together.
--binary LABEL: two classes, LABEL and "Defect" (everything else), e.g. --binary Free for magnetic-tile.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from visionloop.bootstrap import build_engine, build_services
from visionloop.core.datasets import import_folder
from visionloop.core.projects import create_project
from visionloop.core.splitting import split_dataset
from visionloop.core.training import TrainingOptions, request_training
from visionloop.settings import load_settings
from visionloop.workflows.worker import run_job

N_LABELS, PER_LABEL, TEST_PER_LABEL = 20, 40, 9


def files_by_label(root: Path) -> dict[str, list[Path]]:
    return {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }


def balanced20(root: Path, split_seed: int) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    files = files_by_label(root)
    labels = sorted(sorted(files, key=lambda lab: (-len(files[lab]), lab))[:N_LABELS])
    train, test = {}, {}
    for label in labels:
        picked = random.Random(0).sample(files[label], min(PER_LABEL, len(files[label])))
        random.Random(f"{split_seed}/{label}").shuffle(picked)
        test[label], train[label] = picked[:TEST_PER_LABEL], picked[TEST_PER_LABEL:]
    return train, test


def blocked(
    files: dict[str, list[Path]], block: int, split_seed: int, fraction: float = 0.2
) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    groups = {
        label: [paths[i : i + block] for i in range(0, len(paths), block)] for label, paths in files.items()
    }
    return split_groups(groups, split_seed, fraction)


def tiles(files: dict[str, list[Path]], gap: int) -> dict[str, list[list[Path]]]:
    """Groups of files whose trailing numbers lie within ``gap`` of each other (magnetic-tile: the
    photos of one tile under several lightings have neighbouring ids, e.g. 3504 3524 3539 … 3620)."""

    def number(p: Path) -> int:
        digits = re.findall(r"\d+", p.stem)
        return int(digits[-1]) if digits else 0

    out: dict[str, list[list[Path]]] = {}
    for label, paths in files.items():
        groups: list[list[Path]] = []
        for p in sorted(paths, key=number):
            if groups and number(p) - number(groups[-1][-1]) <= gap:
                groups[-1].append(p)
            else:
                groups.append([p])
        out[label] = groups
    return out


def split_groups(
    groups: dict[str, list[list[Path]]], split_seed: int, fraction: float = 0.2
) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    train: dict[str, list[Path]] = {}
    test: dict[str, list[Path]] = {}
    for label, blocks in groups.items():
        rng = random.Random(f"{split_seed}/{label}")
        n_test = max(1, round(fraction * len(blocks))) if len(blocks) > 1 else 0
        chosen = set(rng.sample(range(len(blocks)), n_test))
        test[label] = [p for i, b in enumerate(blocks) if i in chosen for p in b]
        train[label] = [p for i, b in enumerate(blocks) if i not in chosen for p in b]
    return train, test


def relabel(files: dict[str, list[Path]], keep: str | None) -> dict[str, list[Path]]:
    if keep is None:
        return files
    out: dict[str, list[Path]] = {keep: [], "Defect": []}
    for label, paths in files.items():
        out[keep if label == keep else "Defect"].extend(paths)
    return out


def link_tree(root: Path, files: dict[str, list[Path]]) -> Path:
    for label, paths in files.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for p in paths:
            os.symlink(p.resolve(), root / label / f"{p.parent.name}__{p.name}")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("--subset", choices=["balanced20", "all"], default="balanced20")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--mode", choices=["fast", "best"], default="fast")
    ap.add_argument("--backbone", default="auto")
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--binary", metavar="LABEL")
    ap.add_argument("--group-consecutive", type=int, metavar="N")
    ap.add_argument("--group-by-number", type=int, metavar="GAP")
    args = ap.parse_args()
    root = Path(args.dataset)
    if not root.is_dir():
        sys.exit(f"{root} does not exist")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.subset == "balanced20":
            train, test = balanced20(root, args.split_seed)
            split_note = f"balanced20: {TEST_PER_LABEL} test per label, split seed {args.split_seed}"
        elif args.group_by_number:
            groups = tiles(files_by_label(root), args.group_by_number)
            train, test = split_groups(groups, args.split_seed)
            n_groups = sum(len(g) for g in groups.values())
            split_note = (
                f"{n_groups} groups of files numbered within {args.group_by_number} of each other "
                f"(one tile), 20% of groups per label to TEST, seed {args.split_seed}"
            )
        elif args.group_consecutive:
            train, test = blocked(files_by_label(root), args.group_consecutive, args.split_seed)
            n = args.group_consecutive
            split_note = f"blocks of {n} consecutive files, 20% of blocks to TEST, seed {args.split_seed}"
        else:
            train, test = files_by_label(root), {}
            split_note = f"stratified 80/20, seed {args.split_seed}"
        train, test = relabel(train, args.binary), relabel(test, args.binary)
        settings = load_settings({"data_dir": str(work / "var"), "workers": 0}, environ={})
        svc = build_services(settings)
        create_project(svc, "bench")

        t0 = time.perf_counter()
        report = import_folder(svc, "bench", str(link_tree(work / "train", train)))
        if test:
            import_folder(svc, "bench", str(link_tree(work / "test", test)), dataset_type="test")
        else:
            split_dataset(svc, "bench", seed=args.split_seed)
        import_seconds = time.perf_counter() - t0
        if report.failed:
            print(f"warning: {report.failed} images failed to import", file=sys.stderr)

        opts = TrainingOptions(
            backbone=args.backbone, mode=args.mode, seed=args.split_seed, max_seconds=args.max_seconds
        )
        _, job = request_training(svc, "bench", opts)
        claimed = svc.repo.claim_job(svc.clock.now(), job.id)
        assert claimed is not None
        t1 = time.perf_counter()
        run_job(svc, build_engine(settings), claimed, settings.region, settings.account_id)
        train_seconds = time.perf_counter() - t1
        version = svc.repo.get_version_by_id(claimed.version_id or 0)
        if version.evaluation is None:
            sys.exit(f"training failed: {version.status_message}")
        ev: dict[str, Any] = dict(version.evaluation)
        params: dict[str, Any] = dict(version.params)
        timings: dict[str, Any] = dict(params["timings"])
        n_train = sum(len(v) for v in train.values()) if test else None
        print(f"data set   : {root} ({args.subset}{', binary ' + args.binary if args.binary else ''})")
        print(f"split      : {split_note}; {ev['n_images']} test images, {n_train or 'auto'} train images")
        clf: dict[str, Any] = dict(params.get("classifier") or {})
        recipe = clf.get("recipe", {})
        print(
            f"recipe     : mode {args.mode}, backbones {recipe.get('backbones')}, "
            f"views {recipe.get('views')}, "
            f"L2 {clf.get('l2')} chosen by CV {clf.get('cv_macro_f1')}"
        )
        print(f"import     : {import_seconds:6.1f} s")
        rate = timings["images_embedded"] / max(timings["embed_seconds"], 1e-9)
        views = recipe.get("views") or []
        print(
            f"embed      : {timings['embed_seconds']:6.1f} s  ({rate:.0f} images/s, {len(views)} views each)"
        )
        print(f"fit        : {timings['fit_seconds']:6.1f} s")
        finetune = clf.get("finetune") or {}
        if timings.get("finetune_seconds") or finetune:
            verdict = "kept" if finetune.get("kept") else "not kept"
            ft_f1, lin_f1 = finetune.get("cv_macro_f1"), finetune.get("linear_cv_macro_f1")
            seconds = timings.get("finetune_seconds", 0.0)
            print(
                f"fine-tune  : {seconds:6.1f} s  ({verdict}: {finetune.get('reason')}; out-of-fold macro F1 "
                f"{ft_f1} vs linear {lin_f1}, {finetune.get('folds_done')} folds)"
            )
        print(f"evaluate   : {timings['evaluate_seconds']:6.1f} s")
        print(f"training   : {train_seconds:6.1f} s  (embed + fit + fine-tune + evaluate, wall)")
        ci = ev.get("macro_f1_interval") or {}
        lo, hi = ci.get("lower", float("nan")), ci.get("upper", float("nan"))
        print(
            f"macro F1   : {ev['macro_f1']:.3f}  (95% {lo:.3f}–{hi:.3f}); "
            f"top-1 macro F1 {ev.get('top1_macro_f1') or float('nan'):.3f}; accuracy {ev['accuracy']:.3f}; "
            f"ECE {ev['calibration']['ece']:.3f}"
        )
        print(
            f"{'label':<18}{'test':>5}{'precision':>10}{'recall':>8}{'F1':>7}{'F1 95%':>14}{'threshold':>10}"
        )
        for m in ev["per_label"]:
            lo, hi = (m.get("f1_interval") or {}).get("lower"), (m.get("f1_interval") or {}).get("upper")
            interval = f"{lo:.2f}–{hi:.2f}" if lo is not None else "—"
            print(
                f"{m['label']:<18}{m['n_test_images']:>5}{fmt(m['precision']):>10}{fmt(m['recall']):>8}{fmt(m['f1']):>7}{interval:>14}{fmt(m['threshold']):>10}"
            )
        for w in ev.get("warnings", []):
            print(f"warning: {w}")


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
