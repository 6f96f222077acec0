"""Training and prediction: ``train``, ``evaluate``, ``predict`` and ``jobs``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, err_console, pass_ctx
from visionloop.core.entities import Job, ModelVersion, Prediction, VersionStatus
from visionloop.core.records.detections import label_dict
from visionloop.errors import InvalidInput, VisionloopError


def _version_data(v: ModelVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "status": v.status.value,
        "status_message": v.status_message,
        "backbone": v.backbone,
        "mode": v.mode,
        "f1": v.f1,
        "training_seconds": v.training_seconds,
        "created_at": v.created_at.isoformat(),
        "evaluation": v.evaluation,
        "params": v.params,
    }


def _shown(p: Prediction) -> str:
    """A label and its confidence, with a detector's box as left,top width×height in ratios."""
    if p.box is None:
        return f"{p.label} {p.confidence:.1f}"
    b = p.box
    return f"{p.label} {p.confidence:.1f} at {b.left:.3f},{b.top:.3f} {b.width:.3f}×{b.height:.3f}"


def num(x: object) -> str:
    return "—" if x is None else f"{float(x):.3f}"  # type: ignore[arg-type]


def _print_detection_evaluation(ev: dict[str, Any]) -> None:
    """A detector's evaluation (engines.detection.report): per-label AP and scores at IoU 0.5."""
    table = Table("label", "test images", "true boxes", "AP@0.5", "precision", "recall", "F1", "threshold")
    for m in ev.get("per_label", []):
        table.add_row(
            m["label"],
            str(m["n_test_images"]),
            str(m["true_boxes"]),
            num(m["ap"]),
            num(m["precision"]),
            num(m["recall"]),
            num(m["f1"]),
            num(m["threshold"]),
        )
    console.print(table)
    console.print(
        f"mAP@0.5 {num(ev.get('map50'))}; macro F1 {num(ev.get('macro_f1'))}, precision "
        f"{num(ev.get('macro_precision'))}, recall {num(ev.get('macro_recall'))} "
        f"(a box is right at IoU ≥ {ev.get('iou_threshold', 0.5)} with its label)"
    )
    for w in ev.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")


def _model_line(params: Mapping[str, Any]) -> str:
    """What training kept, in words: "efficientnet-lite0-int8, linear head, 7 views centred (7 averaged
    to predict), fast mode"; empty for versions whose params do not say (detectors, older versions)."""
    backbones = params.get("backbones") or []
    classifier = params.get("classifier")
    if not backbones or not isinstance(classifier, Mapping):
        return ""
    recipe = classifier.get("recipe") or {}
    views, predict = recipe.get("views") or [], recipe.get("predict_views") or []
    framing = "of the whole image" if params.get("framing") == "whole image" else "centred"
    head = "fine-tuned network" if classifier.get("kind") == "finetuned" else "linear head"
    if classifier.get("patches"):
        head += f" with patch scores at {classifier['patches'].get('size')} px"
    line = f"{' + '.join(map(str, backbones))}, {head}, {len(views)} views {framing}"
    line += f" ({len(predict)} averaged to predict)" if predict else ""
    return f"{line}, {params['mode']} mode" if params.get("mode") else line


def _print_evaluation(v: ModelVersion) -> None:
    console.print(f"[bold]{v.name}[/]: {v.status.value} — {v.status_message}")
    if not v.evaluation:
        return
    ev: dict[str, Any] = dict(v.evaluation)
    if ev.get("task") == "object_detection":
        _print_detection_evaluation(ev)
        return
    table = Table("label", "test images", "precision", "recall", "F1", "F1 95% interval", "threshold")

    for m in ev.get("per_label", []):
        ci = m.get("f1_interval") or {}
        interval = f"{num(ci.get('lower'))}–{num(ci.get('upper'))}" if ci else "—"
        table.add_row(
            m["label"],
            str(m["n_test_images"]),
            num(m["precision"]),
            num(m["recall"]),
            num(m["f1"]),
            interval,
            num(m["threshold"]),
        )
    console.print(table)
    ci = ev.get("macro_f1_interval") or {}
    console.print(
        f"macro F1 {num(ev.get('macro_f1'))} (95% {num(ci.get('lower'))}–{num(ci.get('upper'))}), "
        f"precision {num(ev.get('macro_precision'))}, recall {num(ev.get('macro_recall'))}, "
        f"accuracy {num(ev.get('accuracy'))}; top-1 macro F1 {num(ev.get('top1_macro_f1'))}"
    )
    if ev.get("new_scenes_macro_f1") is not None:
        console.print(
            f"macro F1 on new scenes {num(ev.get('new_scenes_macro_f1'))} (cross-validation holding out "
            "whole scenes: what to expect on photos of new places or days)"
        )
    expected = ev.get("new_photos_macro_f1") or {}
    if expected:
        console.print(
            f"macro F1 to expect on new photos {num(expected.get('lower'))}–{num(expected.get('upper'))} "
            + ("(TEST's interval)" if expected.get("basis") == "TEST" else "(from new scenes to TEST)")
        )
    suggested = (ev.get("review_guide") or {}).get("suggested")
    if suggested:
        console.print(
            f"review: min_confidence {suggested['min_confidence']:g} sends "
            f"{suggested['wrong_caught']:.0%} of the wrong answers to people and "
            f"{suggested['sent']:.0%} of all answers (out-of-fold predictions of the training images)"
        )
    model = _model_line(v.params)
    if model:
        console.print(f"model: {model}")
    if v.params.get("refit_on_test"):
        console.print(
            f"after this evaluation the model also learned its {ev.get('n_images')} TEST images (split off "
            f"TRAIN automatically): it learned from {v.params.get('trained_on_images')} images"
        )
    for w in ev.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")


@cli.command()
@click.argument("project_name", metavar="PROJECT")
@click.option("--version-name", help="Name of the new version (default v1, v2, …).")
@click.option(
    "--backbone", default="auto", show_default=True, help="Pretrained backbone (auto: the recipe chooses)."
)
@click.option("--mode", type=click.Choice(["fast", "best"]), default="fast", show_default=True)
@click.option("--max-seconds", type=float, help="Training time budget.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--hyperparams",
    metavar="JSON",
    help="Expert hyper-parameters as a JSON object, e.g. '{\"max_epochs\": 30}' (docs/training.md).",
)
@click.option("--background", is_flag=True, help="Only queue the job (a running server's worker trains it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def train(
    ctx: Context,
    project_name: str,
    version_name: str | None,
    backbone: str,
    mode: str,
    max_seconds: float | None,
    seed: int,
    hyperparams: str | None,
    background: bool,
    as_json: bool,
) -> None:
    """Train a model version on PROJECT's datasets, then print its evaluation."""
    from visionloop.core.training import TrainingOptions, request_training

    svc = ctx.services
    opts = TrainingOptions(version_name, backbone, mode, seed, max_seconds, _hyperparams(hyperparams))
    version, job = request_training(svc, project_name, opts)
    if background:
        data = {"version": version.name, "job": job.id, "status": job.status.value}
        emit(data, as_json, lambda: console.print(f"queued job {job.id} for version {version.name}"))
        return
    version = _run_in_foreground(ctx, job, not as_json and sys.stderr.isatty())
    emit(_version_data(version), as_json, lambda: _print_evaluation(version))
    if version.status is VersionStatus.TRAINING_FAILED:
        sys.exit(1)


def _hyperparams(text: str | None) -> dict[str, Any] | None:
    """``--hyperparams``: a JSON object (the trainer checks its names and values)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--hyperparams") from None
    if not isinstance(value, dict):
        raise click.BadParameter(
            'a JSON object is needed, e.g. {"max_epochs": 30}', param_hint="--hyperparams"
        )
    return value


def _run_in_foreground(ctx: Context, job: Job, show: bool) -> ModelVersion:
    """Run the queued ``job`` here, as a worker would (workflows.worker.Worker); with ``show``, a
    progress bar follows it from a Ticker thread."""
    from visionloop.bootstrap import build_worker
    from visionloop.core.jobs import claim_job, get_job, job_version
    from visionloop.workflows.background import Ticker

    svc = ctx.services
    claimed = claim_job(svc, job)
    worker = build_worker(svc, ctx.settings)
    if not show:
        worker.run_job(claimed)
        return job_version(svc, job)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("training", total=1.0)

        def follow() -> None:
            current = get_job(svc, job.id)
            bar.update(task, completed=current.progress, description=current.stage or "training")

        progress = Ticker("training-progress", follow, 0.3).start()
        try:
            worker.run_job(claimed)
        finally:
            progress.stop()
    return job_version(svc, job)


@cli.command()
@click.argument("project_name", metavar="PROJECT")
@click.argument("version_name", metavar="VERSION", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def evaluate(ctx: Context, project_name: str, version_name: str | None, as_json: bool) -> None:
    """Print a version's evaluation on the TEST dataset (default: the newest trained version)."""
    from visionloop.core.training import find_version

    v = find_version(ctx.services, project_name, version_name)
    emit(_version_data(v), as_json, lambda: _print_evaluation(v))


@cli.command()
@click.argument("target", metavar="PROJECT[/VERSION]")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--min-confidence", type=float, help="0-100; default: each label's assumed threshold.")
@click.option("--max-results", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def predict(
    ctx: Context,
    target: str,
    images: tuple[str, ...],
    min_confidence: float | None,
    max_results: int | None,
    as_json: bool,
) -> None:
    """Predict labels for IMAGES with a trained version."""
    from visionloop.bootstrap import build_engine
    from visionloop.core.images import check_image
    from visionloop.core.training import ModelCache, find_version
    from visionloop.core.training import predict as run_predict

    project_name, _, version_name = target.partition("/")
    svc = ctx.services
    version = find_version(svc, project_name, version_name or None)
    datas = [Path(p).read_bytes() for p in images]
    for path, data in zip(images, datas, strict=True):
        try:
            check_image(data, svc.inspector)
        except VisionloopError as e:
            raise InvalidInput(f"{path}: {e.message}") from None
    results = run_predict(
        ModelCache(svc, build_engine(ctx.settings)), version, datas, min_confidence, max_results
    )
    found = [
        {"image": p, "labels": [label_dict(r) for r in res]} for p, res in zip(images, results, strict=True)
    ]

    def render() -> None:
        for p, res in zip(images, results, strict=True):
            found = ", ".join(_shown(r) for r in res) or "(no label above its threshold)"
            console.print(f"{p}: {found}")

    emit({"version": version.name, "predictions": found}, as_json, render)


@cli.group()
def jobs() -> None:
    """Background jobs (training) and their progress."""


@jobs.command("list")
@click.option("--project", "project_name", help="Only this project's jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def jobs_list(ctx: Context, project_name: str | None, as_json: bool) -> None:
    """List jobs with status, stage and progress."""
    from visionloop.core.jobs import list_jobs

    items = list_jobs(ctx.services, project_name)

    def render() -> None:
        table = Table("id", "kind", "status", "stage", "progress", "eta", "message")
        for j in items:
            eta = "" if j.eta_seconds is None else f"{j.eta_seconds:.0f} s"
            table.add_row(
                str(j.id), j.kind, j.status.value, j.stage, f"{100 * j.progress:.0f}%", eta, j.message
            )
        console.print(table)

    emit([j.to_dict() for j in items], as_json, render)


@jobs.command("show")
@click.argument("job_id", type=int)
@pass_ctx
def jobs_show(ctx: Context, job_id: int) -> None:
    """Show one job as JSON."""
    from visionloop.core.jobs import get_job

    click.echo(json.dumps(get_job(ctx.services, job_id).to_dict(), indent=2))
