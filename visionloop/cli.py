"""The ``visionloop`` command line: serve, projects, datasets, buckets, reviewers and the database."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from visionloop import __version__
from visionloop.core.accounts import Accounts
from visionloop.core.entities import DatasetType, ImportReport, Job, ModelVersion, VersionStatus
from visionloop.core.keys import ObjectRef
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, VisionloopError
from visionloop.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


class Context:
    def __init__(self, overrides: dict[str, Any], config: str | None) -> None:
        self.overrides = overrides
        self.config = config
        self._services: Services | None = None

    @property
    def settings(self) -> Settings:
        return load_settings(self.overrides, config_file=self.config)

    @property
    def services(self) -> Services:
        if self._services is None:
            from visionloop.bootstrap import build_services

            self._services = build_services(self.settings)
        return self._services


pass_ctx = click.make_pass_decorator(Context)


def _emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        render()


@click.group()
@click.version_option(__version__, prog_name="visionloop")
@click.option("--data-dir", envvar="VISIONLOOP_DATA_DIR", help="Data folder (default ./var).")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML config file.")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, config: str | None) -> None:
    """visionloop: self-hosted custom labels, image analysis and human review."""
    ctx.obj = Context({"data_dir": data_dir}, config)


# --- serve ---------------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--host", help="Address to listen on (default 127.0.0.1; a non-loopback one needs access_keys)."
)
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--data-dir", help="Data folder (default ./var).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None, data_dir: str | None) -> None:
    """Run the HTTP server (native API, AWS-compatible API, docs)."""
    import uvicorn

    from visionloop.api.app import create_app
    from visionloop.bootstrap import build_services

    overrides = {**ctx.overrides, "host": host, "port": port}
    if data_dir:
        overrides["data_dir"] = data_dir
    from visionloop.core.entries import recover_interrupted_datasets
    from visionloop.workflows.supervisor import WorkerPool, start_worker
    from visionloop.workflows.worker import fail_jobs_of_worker, recover_interrupted_jobs, worker_id

    settings = load_settings(overrides, config_file=ctx.config)
    host = bind_host(settings)
    services = build_services(settings)
    recover_interrupted_jobs(services)
    recover_interrupted_datasets(services)
    app = create_app(services, settings)
    err_console.print(
        f"visionloop {__version__} on http://{_url_host(host)}:{settings.port}  (data in {settings.data_dir})"
    )
    err_console.print(auth_summary(settings), highlight=False)
    workers = WorkerPool(
        lambda: start_worker(settings),
        settings.workers,
        lambda pid, message: fail_jobs_of_worker(services, worker_id(pid), message),
    ).start()
    app.state.workers = workers  # watched: a dead worker is replaced; /healthz reports them
    try:
        uvicorn.run(
            app,
            host=host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            **proxy_options(settings),
        )
    finally:
        workers.stop()


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For / -Proto: believed only from the trusted_proxies. uvicorn's
    own default believes 127.0.0.1, so anyone on this machine could pose as any client (and escape the
    sign-in throttling, which counts per client address)."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


def bind_host(settings: Settings) -> str:
    """The address ``serve`` listens on. Without access keys nothing checks who calls, so only a loopback
    address is allowed; asking for another one is an error rather than a silent change of address."""
    if settings.access_keys or is_loopback(settings.host):
        return settings.host
    raise InvalidInput(
        f"refusing to listen on {settings.host!r}: no access_keys are set, so the API is unauthenticated "
        "and may listen on a loopback address only (127.0.0.1, ::1 or localhost). Set access_keys "
        "(e.g. VISIONLOOP_ACCESS_KEYS=AKID:SECRET) to listen on other addresses; see docs/security.md."
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_summary(settings: Settings) -> str:
    """The line ``serve`` prints at start about authentication."""
    n = len(settings.access_keys)
    if not n:
        return (
            "[yellow]authentication is off[/] (no access_keys): every request is accepted, "
            "so the server listens on this machine only"
        )
    keys = "1 access key" if n == 1 else f"{n} access keys"
    return (
        f"authentication is on ({keys}): the AWS API needs SigV4 signatures by one of them, "
        "the native API 'Authorization: Bearer <secret>'"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# --- projects ------------------------------------------------------------------------------------------


@cli.group()
def project() -> None:
    """Create, list and delete projects."""


@project.command("create")
@click.argument("name")
@click.option(
    "--task",
    type=click.Choice(["classification", "multi_label", "object_detection"]),
    default="classification",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def project_create(ctx: Context, name: str, task: str, as_json: bool) -> None:
    """Create a project."""
    from visionloop.core.projects import create_project

    p = create_project(ctx.services, name, task)
    data = {"name": p.name, "task": p.task.value, "created_at": p.created_at.isoformat()}
    _emit(data, as_json, lambda: console.print(f"created project [bold]{p.name}[/] ({p.task.value})"))


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def project_list(ctx: Context, as_json: bool) -> None:
    """List projects."""
    items = ctx.services.repo.list_projects()
    data = [{"name": p.name, "task": p.task.value, "created_at": p.created_at.isoformat()} for p in items]

    def render() -> None:
        table = Table("name", "task", "created")
        for p in items:
            table.add_row(p.name, p.task.value, p.created_at.strftime("%Y-%m-%d %H:%M"))
        console.print(table)

    _emit(data, as_json, render)


@project.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def project_delete(ctx: Context, name: str, yes: bool) -> None:
    """Delete a project with its datasets."""
    from visionloop.core.projects import delete_project, get_project

    get_project(ctx.services, name)
    if not yes and not click.confirm(f"Delete project {name!r} and all its datasets?", default=False):
        raise click.Abort()
    delete_project(ctx.services, name)
    console.print(f"deleted project {name}")


# --- datasets ------------------------------------------------------------------------------------------


@cli.group()
def dataset() -> None:
    """Import, inspect, split and export datasets."""


@contextmanager
def _progress(enabled: bool, what: str) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _guess_format(source: str) -> str:
    if source.startswith("s3://") and source.endswith("/"):
        return "folder"
    if source.endswith((".manifest", ".jsonl", ".manifest.json")) or source.startswith("s3://"):
        return "manifest"
    if source.endswith(".json"):
        return "coco"
    if os.path.isdir(source):
        return "folder"
    raise InvalidInput(f"cannot tell what {source!r} is; pass --format folder, manifest or coco")


def _print_report(report: ImportReport, seconds: float) -> None:
    console.print(
        f"imported [bold green]{report.imported}[/], skipped {report.skipped}, "
        f"failed [bold red]{report.failed}[/] in {seconds:.1f} s; {len(report.labels)} labels"
    )
    problems = [i for i in report.issues if i.code not in ("MERGED",)]
    if problems:
        table = Table("input", "code", "reason", title="not imported")
        for issue in problems[:50]:
            table.add_row(issue.ref, issue.code, issue.message)
        console.print(table)
        if len(problems) > 50:
            console.print(f"… and {len(problems) - 50} more (use --json for all)")


@dataset.command("import")
@click.argument("project_name", metavar="PROJECT")
@click.argument("source")
@click.option(
    "--type", "dataset_type", type=click.Choice(["train", "test"]), default="train", show_default=True
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "folder", "manifest", "coco"]),
    default="auto",
    show_default=True,
)
@click.option("--images-dir", help="COCO only: folder the file_name paths are relative to.")
@click.option(
    "--groups-from-folders",
    is_flag=True,
    help="Folders only: read SOURCE as <label>/<group>/<file>; each group folder holds similar photos.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@pass_ctx
def dataset_import(
    ctx: Context,
    project_name: str,
    source: str,
    dataset_type: str,
    fmt: str,
    images_dir: str | None,
    groups_from_folders: bool,
    as_json: bool,
) -> None:
    """Import SOURCE: a folder per label (local or s3://bucket/prefix/), a Ground Truth manifest
    (file or s3://bucket/key) or a COCO detection JSON."""
    import time

    from visionloop.core import datasets
    from visionloop.core.importing import SourceAccess

    fmt = _guess_format(source) if fmt == "auto" else fmt
    if groups_from_folders and fmt != "folder":
        raise click.UsageError("--groups-from-folders applies to folder imports only")
    # any path this user can read (they run the CLI on the server), files capped by max_import_file_mb
    access = SourceAccess(max_file_bytes=int(ctx.settings.max_import_file_mb * 1024 * 1024))
    started = time.perf_counter()
    with _progress(not as_json and sys.stderr.isatty(), f"importing {fmt}") as update:
        if fmt == "folder":
            report = datasets.import_folder(
                ctx.services, project_name, source, dataset_type, update, groups_from_folders, access
            )
        elif fmt == "manifest":
            report = datasets.import_manifest(
                ctx.services, project_name, source, dataset_type, update, access=access
            )
        else:
            report = datasets.import_coco(
                ctx.services, project_name, source, dataset_type, images_dir, update, access
            )
    seconds = time.perf_counter() - started
    _emit({**report.to_dict(), "seconds": round(seconds, 2)}, as_json, lambda: _print_report(report, seconds))


@dataset.command("stats")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def dataset_stats(ctx: Context, project_name: str, as_json: bool) -> None:
    """Images, labelled/unlabelled counts, per-label counts and warnings."""
    from visionloop.core.stats import dataset_stats as compute

    st = compute(ctx.services, project_name)

    def render() -> None:
        console.print(
            f"{st.images} images ({st.train_images} train, {st.test_images} test), "
            f"{st.labeled} labelled, {st.unlabeled} unlabelled"
        )
        table = Table("label", "train", "test", "train boxes", "test boxes")
        for lc in st.labels:
            table.add_row(lc.label, str(lc.train), str(lc.test), str(lc.train_boxes), str(lc.test_boxes))
        console.print(table)
        for w in st.warnings:
            console.print(f"[yellow]warning:[/] {w}")

    _emit(st.to_dict(), as_json, render)


@dataset.command("split")
@click.argument("project_name", metavar="PROJECT")
@click.option("--test-fraction", type=float, default=0.2, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def dataset_split(ctx: Context, project_name: str, test_fraction: float, seed: int, as_json: bool) -> None:
    """Move a stratified share of TRAIN into an empty TEST dataset, keeping groups of similar photos
    on one side."""
    from visionloop.core.splitting import split_dataset

    rec = split_dataset(ctx.services, project_name, test_fraction, seed)
    data = {
        "seed": rec.seed,
        "test_fraction": rec.test_fraction,
        "train": rec.train_count,
        "test": rec.test_count,
        "groups": rec.n_groups,
        "warnings": list(rec.warnings),
    }

    def render() -> None:
        console.print(
            f"split with seed {rec.seed}: {rec.train_count} train, {rec.test_count} test "
            f"({rec.n_groups} groups of similar photos kept together)"
        )
        for w in rec.warnings:
            console.print(f"[yellow]warning:[/] {w}")

    _emit(data, as_json, render)


@dataset.command("export")
@click.argument("project_name", metavar="PROJECT")
@click.option(
    "--type", "dataset_type", type=click.Choice(["train", "test"]), default="train", show_default=True
)
@click.option("--bucket", default="exports", show_default=True, help="Bucket that receives the manifest.")
@click.option("--prefix", help="Key prefix (default PROJECT/TYPE).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Also write the manifest to this file.")
@pass_ctx
def dataset_export(
    ctx: Context, project_name: str, dataset_type: str, bucket: str, prefix: str | None, output: str | None
) -> None:
    """Export a dataset as a SageMaker Ground Truth manifest."""
    from visionloop.core.exporting import export_manifest

    uri, text = export_manifest(ctx.services, project_name, DatasetType(dataset_type), bucket, prefix)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    console.print(f"wrote {text.count(chr(10))} lines to {uri}" + (f" and {output}" if output else ""))


# --- buckets -------------------------------------------------------------------------------------------


@cli.group()
def bucket() -> None:
    """List and copy objects in buckets (folders under <data-dir>/buckets/)."""


@bucket.command("ls")
@click.argument("target", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def bucket_ls(ctx: Context, target: str | None, as_json: bool) -> None:
    """List buckets, or the objects under s3://BUCKET[/PREFIX]."""
    from visionloop.core.keys import parse_s3_prefix

    store = ctx.services.buckets
    if not target:
        names = store.list_buckets()

        def render_names() -> None:
            for n in names:
                click.echo(n)

        _emit(names, as_json, render_names)
        return
    name, prefix = parse_s3_prefix(target if target.startswith("s3://") else f"s3://{target}")
    objects = list(store.list_objects(name, prefix))
    data = [{"key": o.key, "size": o.size, "modified": o.modified.isoformat()} for o in objects]

    def render() -> None:
        for o in objects:
            click.echo(f"{o.modified:%Y-%m-%d %H:%M}  {o.size:>10}  s3://{name}/{o.key}")

    _emit(data, as_json, render)


@bucket.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("target")
@pass_ctx
def bucket_put(ctx: Context, file: str, target: str) -> None:
    """Copy FILE to s3://BUCKET/KEY (a TARGET ending in '/' keeps the file name)."""
    from visionloop.core.keys import check_bucket, parse_s3_uri

    if target.endswith("/"):
        target += os.path.basename(file)
    ref = parse_s3_uri(target)
    ctx.services.buckets.create_bucket(check_bucket(ref.bucket))
    ctx.services.buckets.put(ref.bucket, ref.key, Path(file).read_bytes())
    console.print(f"put {file} → {ref.uri()}")


@bucket.command("sync")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("target")
@pass_ctx
def bucket_sync(ctx: Context, folder: str, target: str) -> None:
    """Copy every file under FOLDER to s3://BUCKET/PREFIX/, skipping files already there unchanged."""
    from visionloop.core.keys import check_key, parse_s3_prefix

    name, prefix = parse_s3_prefix(target)
    store = ctx.services.buckets
    store.create_bucket(name)
    existing = {o.key: o.size for o in store.list_objects(name, prefix)}
    copied = same = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            path = os.path.join(dirpath, fname)
            key = check_key(prefix + os.path.relpath(path, folder).replace(os.sep, "/"))
            data = Path(path).read_bytes()
            if existing.get(key) == len(data) and store.get(name, key) == data:
                same += 1
                continue
            store.put(name, key, data)
            copied += 1
    console.print(f"copied {copied} files to s3://{name}/{prefix} ({same} already up to date)")


# --- training and prediction ---------------------------------------------------------------------------


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


def _print_evaluation(v: ModelVersion) -> None:
    console.print(f"[bold]{v.name}[/]: {v.status.value} — {v.status_message}")
    if not v.evaluation:
        return
    ev: dict[str, Any] = dict(v.evaluation)
    table = Table("label", "test images", "precision", "recall", "F1", "F1 95% interval", "threshold")

    def num(x: object) -> str:
        return "—" if x is None else f"{float(x):.3f}"  # type: ignore[arg-type]

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
    background: bool,
    as_json: bool,
) -> None:
    """Train a model version on PROJECT's datasets, then print its evaluation."""
    from visionloop.core.training import TrainingOptions, request_training

    svc = ctx.services
    opts = TrainingOptions(version_name, backbone, mode, seed, max_seconds)
    version, job = request_training(svc, project_name, opts)
    if background:
        data = {"version": version.name, "job": job.id, "status": job.status.value}
        _emit(data, as_json, lambda: console.print(f"queued job {job.id} for version {version.name}"))
        return
    version = _run_in_foreground(ctx, job, not as_json and sys.stderr.isatty())
    _emit(_version_data(version), as_json, lambda: _print_evaluation(version))
    if version.status is VersionStatus.TRAINING_FAILED:
        sys.exit(1)


def _run_in_foreground(ctx: Context, job: Job, show: bool) -> ModelVersion:
    import threading

    from visionloop.bootstrap import build_engine
    from visionloop.workflows.worker import run_job

    svc, settings = ctx.services, ctx.settings
    claimed = svc.repo.claim_job(svc.clock.now(), job.id)
    if claimed is None:
        raise InvalidInput(f"job {job.id} was taken by another worker")
    failure: list[BaseException] = []

    def work() -> None:
        try:
            run_job(svc, build_engine(settings), claimed, settings.region, settings.account_id)
        except BaseException as e:  # reported below
            failure.append(e)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    if show:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err_console, transient=True) as bar:
            task = bar.add_task("training", total=1.0)
            while thread.is_alive():
                current = svc.repo.get_job(job.id)
                bar.update(task, completed=current.progress, description=current.stage or "training")
                thread.join(0.3)
    thread.join()
    if failure:
        raise failure[0]
    assert job.version_id is not None
    return svc.repo.get_version_by_id(job.version_id)


@cli.command()
@click.argument("project_name", metavar="PROJECT")
@click.argument("version_name", metavar="VERSION", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def evaluate(ctx: Context, project_name: str, version_name: str | None, as_json: bool) -> None:
    """Print a version's evaluation on the TEST dataset (default: the newest trained version)."""
    from visionloop.core.training import find_version

    v = find_version(ctx.services, project_name, version_name)
    _emit(_version_data(v), as_json, lambda: _print_evaluation(v))


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
        {"image": p, "labels": [{"name": r.label, "confidence": r.confidence} for r in res]}
        for p, res in zip(images, results, strict=True)
    ]

    def render() -> None:
        for p, res in zip(images, results, strict=True):
            found = (
                ", ".join(f"{r.label} {r.confidence:.1f}" for r in res) or "(no label above its threshold)"
            )
            console.print(f"{p}: {found}")

    _emit({"version": version.name, "predictions": found}, as_json, render)


@cli.group()
def jobs() -> None:
    """Background jobs (training) and their progress."""


@jobs.command("list")
@click.option("--project", "project_name", help="Only this project's jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def jobs_list(ctx: Context, project_name: str | None, as_json: bool) -> None:
    """List jobs with status, stage and progress."""
    svc = ctx.services
    pid = svc.repo.get_project(project_name).id if project_name else None
    items = svc.repo.list_jobs(pid)

    def render() -> None:
        table = Table("id", "kind", "status", "stage", "progress", "eta", "message")
        for j in items:
            eta = "" if j.eta_seconds is None else f"{j.eta_seconds:.0f} s"
            table.add_row(
                str(j.id), j.kind, j.status.value, j.stage, f"{100 * j.progress:.0f}%", eta, j.message
            )
        console.print(table)

    _emit([j.to_dict() for j in items], as_json, render)


@jobs.command("show")
@click.argument("job_id", type=int)
@pass_ctx
def jobs_show(ctx: Context, job_id: int) -> None:
    """Show one job as JSON."""
    click.echo(json.dumps(ctx.services.repo.get_job(job_id).to_dict(), indent=2))


# --- workflow: runs, rollback and schedules (continuous improvement) ------------------------------------


@cli.group()
def workflow() -> None:
    """Continuous improvement: training checks, rollbacks, their run history and the schedules; the
    watched inboxes, human sampling and the drift signal."""


def _run_row(r: Any) -> list[str]:
    seconds = (
        ""
        if r.started_at is None or r.ended_at is None
        else f"{(r.ended_at - r.started_at).total_seconds():.0f} s"
    )
    note = r.error or r.reason or ""
    return [
        str(r.id),
        r.kind,
        r.status.value,
        r.trigger,
        r.current_step or "",
        r.outcome or "",
        r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        seconds,
        note,
    ]


@workflow.command("runs")
@click.argument("project_name", metavar="PROJECT")
@click.option("--status", help="Only runs with this status (QUEUED, RUNNING, SUCCEEDED, FAILED).")
@click.option("--kind", help="Only runs of this kind (training_check, rollback).")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_runs(
    ctx: Context, project_name: str, status: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """List PROJECT's workflow runs, newest first."""
    from visionloop.core.runs import list_runs

    items = list_runs(ctx.services, project_name, status=status, kind=kind, limit=limit)

    def render() -> None:
        table = Table("id", "kind", "status", "trigger", "step", "outcome", "created", "took", "reason")
        for r in items:
            table.add_row(*_run_row(r))
        console.print(table)

    _emit([r.to_dict() for r in items], as_json, render)


@workflow.command("show")
@click.argument("project_name", metavar="PROJECT")
@click.argument("run_id", type=int, metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_show(ctx: Context, project_name: str, run_id: int, as_json: bool) -> None:
    """Show one run with every step: status, times, output and error."""
    from visionloop.core.runs import get_run, run_steps

    svc = ctx.services
    run = get_run(svc, project_name, run_id)
    steps = run_steps(svc, run)

    def render() -> None:
        console.print(
            f"run {run.id} ({run.kind}, {run.trigger}): [bold]{run.status.value}[/] {run.outcome or ''}"
        )
        if run.reason or run.error:
            console.print(run.error or run.reason, highlight=False)
        table = Table("#", "step", "status", "started", "took", "output / error")
        for s in steps:
            took = "" if s.ended_at is None else f"{(s.ended_at - s.started_at).total_seconds():.1f} s"
            shown = s.error or json.dumps(s.output, default=str)
            table.add_row(
                str(s.seq), s.name, s.status.value, s.started_at.strftime("%H:%M:%S"), took, shown[:200]
            )
        console.print(table)

    _emit({**run.to_dict(), "steps": [s.to_dict() for s in steps]}, as_json, render)


def _queued(ctx: Context, run: Any, wait: bool, timeout: float, as_json: bool) -> None:
    import time

    from visionloop.core.runs import ACTIVE

    svc = ctx.services
    if wait:
        deadline = time.monotonic() + timeout
        while run.status in ACTIVE and time.monotonic() < deadline:
            time.sleep(0.5)
            run = svc.repo.get_run(run.id)
    data = run.to_dict()

    def render() -> None:
        if run.status in ACTIVE:
            hint = "" if not wait else " (still; is `visionloop serve` running?)"
            console.print(
                f"run {run.id} is {run.status.value}{hint}: the server's workflow runner executes it"
            )
        else:
            console.print(f"run {run.id} {run.status.value}: {run.outcome} — {run.error or run.reason or ''}")

    _emit(data, as_json, render)
    if wait and run.status.value == "FAILED":
        sys.exit(1)


@workflow.command("check")
@click.argument("project_name", metavar="PROJECT")
@click.option("--wait", is_flag=True, help="Wait until the run ends (the server executes it).")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait at most.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_check(ctx: Context, project_name: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Queue a training check now: train, evaluate and deploy if PROJECT's parameters say so."""
    from visionloop.core.retraining import request_check

    _queued(ctx, request_check(ctx.services, project_name), wait, timeout, as_json)


@workflow.command("rollback")
@click.argument("project_name", metavar="PROJECT")
@click.option("--to", "to_version", help="Go back to this version (default: the one deployed before).")
@click.option("--wait", is_flag=True, help="Wait until the run ends (the server executes it).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait at most.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_rollback(
    ctx: Context, project_name: str, to_version: str | None, wait: bool, timeout: float, as_json: bool
) -> None:
    """Switch PROJECT back to the version deployed before the current one (started if needed)."""
    from visionloop.core.deployments import request_rollback

    _queued(ctx, request_rollback(ctx.services, project_name, to_version), wait, timeout, as_json)


@workflow.command("status")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_status(ctx: Context, project_name: str, as_json: bool) -> None:
    """PROJECT's serving version, deployment log, schedules and active run."""
    from visionloop.core.deployments import deployments, serving_version
    from visionloop.core.runs import active_run
    from visionloop.core.schedules import list_schedules

    svc = ctx.services
    serving = serving_version(svc, project_name)
    log = deployments(svc, project_name, 10)
    plans = list_schedules(svc, project_name)
    active = active_run(svc, svc.repo.get_project(project_name).id)
    data = {
        "serving": serving.name if serving else None,
        "deployments": [d.to_dict() for d in log],
        "schedules": [s.to_dict() for s in plans],
        "active_run": active.to_dict() if active else None,
    }

    def render() -> None:
        console.print(f"serving version: [bold]{data['serving'] or '(none)'}[/]")
        if active:
            console.print(
                f"active run: {active.id} ({active.kind}) {active.status.value} at {active.current_step}"
            )
        table = Table("deployed", "version", "previous", "reason", "run")
        for d in log:
            table.add_row(
                d.deployed_at.strftime("%Y-%m-%d %H:%M:%S"),
                d.version,
                d.previous or "",
                d.reason,
                str(d.run_id or ""),
            )
        console.print(table)
        table = Table("check", "enabled", "every", "next run", "last run", "last result")
        for s in plans:
            nxt = s.next_run_at.strftime("%Y-%m-%d %H:%M:%S") if s.next_run_at and s.enabled else ""
            last = s.last_run_at.strftime("%Y-%m-%d %H:%M:%S") if s.last_run_at else ""
            every = f"{s.interval_minutes:g} min"
            table.add_row(s.kind, "yes" if s.enabled else "no", every, nxt, last, s.last_result or "")
        console.print(table)

    _emit(data, as_json, render)


@cli.command()
@click.option(
    "--recover/--no-recover",
    default=True,
    help="First mark jobs left running by a dead worker as failed (run only one recovering worker).",
)
@click.option(
    "--parent-pid", type=int, hidden=True, help="Stop when this process is gone (set by the server)."
)
@pass_ctx
def worker(ctx: Context, recover: bool, parent_pid: int | None) -> None:
    """Run queued jobs until stopped (the server starts its own)."""
    import signal
    import threading

    from visionloop.bootstrap import build_engine
    from visionloop.workflows.worker import run_worker

    settings = ctx.settings
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if parent_pid is not None:
        from visionloop.workflows.worker import stop_when_parent_exits

        stop_when_parent_exits(parent_pid, stop)
    err_console.print(f"worker started (data in {settings.data_dir})")
    try:
        run_worker(
            ctx.services, build_engine(settings), settings.region, settings.account_id, stop, recover=recover
        )
    except KeyboardInterrupt:
        stop.set()


# --- the detection log, inboxes and sampling (continuous improvement) ------------------------------------


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{option} must be an ISO 8601 time such as 2026-03-01T09:00, not {value!r}"
        ) from None


@cli.command()
@click.argument("project_name", metavar="PROJECT")
@click.option("--since", help="ISO 8601 time, inclusive (no zone: UTC).")
@click.option("--until", help="ISO 8601 time, exclusive.")
@click.option("--label", help="Only detections that returned this label.")
@click.option(
    "--min-confidence", type=float, help="0-100: the label's confidence (with --label), else the top one."
)
@click.option("--max-confidence", type=float, help="0-100, inclusive.")
@click.option("--source", type=click.Choice(["api", "aws", "inbox", "console"]), help="Where it came from.")
@click.option("--version", "version_name", help="Only this model version's detections.")
@click.option("--limit", type=int, default=50, show_default=True, help="Detections per page (1-1000).")
@click.option("--cursor", help="Continue after a page (the next cursor it printed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def detections(
    ctx: Context,
    project_name: str,
    since: str | None,
    until: str | None,
    label: str | None,
    min_confidence: float | None,
    max_confidence: float | None,
    source: str | None,
    version_name: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """The detection log of PROJECT, newest first, with filters; a page at a time."""
    from visionloop.core.detections import DetectionFilter, DetectionSource, list_detections

    where = DetectionFilter(
        _when(since, "--since"),
        _when(until, "--until"),
        label,
        min_confidence,
        max_confidence,
        DetectionSource(source) if source else None,
        version_name,
    )
    page = list_detections(ctx.services, project_name, where, limit=limit, cursor=cursor)

    def render() -> None:
        table = Table("id", "time", "version", "source", "labels", "top", "image")
        for d in page.detections:
            said = ", ".join(f"{p.label} {p.confidence:.1f}" for p in d.labels) or "-"
            top = "" if d.top_label is None else f"{d.top_label} {d.top_confidence:.1f}"
            table.add_row(
                str(d.id),
                f"{d.detected_at:%Y-%m-%d %H:%M:%S}",
                d.version,
                d.source.value,
                said,
                top,
                d.content_hash[:12],
            )
        console.print(table)
        if page.next_cursor:
            click.echo(f"more: --cursor {page.next_cursor}")

    data = {"detections": [d.to_dict() for d in page.detections], "next_cursor": page.next_cursor}
    _emit(data, as_json, render)


@workflow.command("scan")
@click.argument("project_name", metavar="PROJECT")
@click.option("--version", "version_name", help="Detect with this version (default: the serving one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_scan(ctx: Context, project_name: str, version_name: str | None, as_json: bool) -> None:
    """Take what waits in PROJECT's inboxes now, detecting in this process (no server needed)."""
    from visionloop.bootstrap import build_detection_log, build_engine, inbox_settings
    from visionloop.core.inbox import scan_inbox
    from visionloop.core.review import ReviewHook
    from visionloop.workflows.inbox import LocalDetector

    svc, settings = ctx.services, ctx.settings
    log = build_detection_log(svc, settings)
    hook = ReviewHook(svc, region=settings.region, account=settings.account_id)
    detector = LocalDetector(svc, lambda: build_engine(settings), log, hook)
    try:
        report = scan_inbox(svc, project_name, detector, inbox_settings(settings), version=version_name)
    finally:
        log.close()
        hook.drain()
        hook.close()

    def render() -> None:
        for item in report.items:
            where = item.get("result_key") or item.get("moved_to") or ""
            why = f" ({item['message']})" if item.get("message") else ""
            click.echo(f"{item['key']}: {item['outcome']} → {where}{why}")
        for note in report.notes:
            click.echo(note)
        click.echo(
            f"{report.detected} detected, {report.added} added to TRAIN, {report.duplicates} already there, "
            f"{report.failed} failed (see errors/), {report.waiting} waiting"
        )

    _emit(report.to_dict(), as_json, render)


@workflow.command("inbox")
@click.argument("project_name", metavar="PROJECT")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_inbox(ctx: Context, project_name: str, limit: int, as_json: bool) -> None:
    """What PROJECT's inboxes took, newest first."""
    from visionloop.core.projects import get_project

    svc = ctx.services
    items = svc.repo.list_inbox_items(get_project(svc, project_name).id, limit=limit)

    def render() -> None:
        for i in items:
            when = f"{i.finished_at:%Y-%m-%d %H:%M:%S}" if i.finished_at else "(working)"
            where = f" → {i.moved_to}" if i.moved_to else ""
            why = f" ({i.message})" if i.message else ""
            click.echo(f"{i.id} {when} {i.kind.value} {i.status.value}: {i.key}{where}{why}")

    _emit([i.to_dict() for i in items], as_json, render)


@workflow.command("sample")
@click.argument("project_name", metavar="PROJECT")
@pass_ctx
def workflow_sample(ctx: Context, project_name: str) -> None:
    """Run PROJECT's sampling check now (the server runs it every human_sampling_minutes)."""
    from visionloop.core.sampling import run_sampling_check

    settings = ctx.settings
    result = run_sampling_check(
        ctx.services, project_name, region=settings.region, account=settings.account_id
    )
    click.echo(result.message)


@workflow.command("agreement")
@click.argument("project_name", metavar="PROJECT")
@click.option("--bucket", type=click.Choice(["day", "week"]), default="day", show_default=True)
@click.option("--since", help="ISO 8601 time: loops completed from then.")
@click.option("--until", help="ISO 8601 time, exclusive.")
@click.option(
    "--purpose", type=click.Choice(["audit", "low_confidence", "explicit"]), help="Only these loops."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_agreement(
    ctx: Context,
    project_name: str,
    bucket: str,
    since: str | None,
    until: str | None,
    purpose: str | None,
    as_json: bool,
) -> None:
    """The drift signal: how often reviewers agreed with the model, per day or week and label."""
    from visionloop.core.sampling import agreement_over_time

    found = agreement_over_time(
        ctx.services,
        project_name,
        bucket=bucket,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        purpose=purpose,
    )

    def render() -> None:
        table = Table(bucket, "loops", "agreed", "rate", "per label (model said: agreed)")
        for b in found:
            rate = "" if b.rate is None else f"{100 * b.rate:.0f}%"
            per = ", ".join(f"{c.label} {c.model_said}:{c.agreed}" for c in b.labels if c.model_said)
            table.add_row(f"{b.start:%Y-%m-%d}", str(b.loops), str(b.agreed), rate, per)
        console.print(table)

    _emit([b.to_dict() for b in found], as_json, render)


# --- accounts: operators and reviewers ------------------------------------------------------------------


@cli.group()
def user() -> None:
    """Accounts of the people who use the web pages: operators (the console at /console/ and the review
    pages) and reviewers (the review pages at /review/ only)."""


@cli.group()
def reviewer() -> None:
    """Accounts of the people who answer human-review items in the browser (/review/); the same accounts
    as `visionloop user` (add --role operator for the web console)."""


def _accounts(ctx: Context) -> Accounts:
    from visionloop.bootstrap import build_accounts

    return build_accounts(ctx.services, ctx.settings)


def _read_password(password_stdin: bool) -> str:
    """From standard input (its first line) or an interactive prompt typed twice; checked for length."""
    from visionloop.core.accounts import check_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return check_password(password)


ROLE_CHOICE = click.Choice(["operator", "reviewer"], case_sensitive=False)
SIGN_IN_AT = {"operator": "/console/", "reviewer": "/review/"}


@click.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=ROLE_CHOICE,
    default="reviewer",
    show_default=True,
    help="operator: the web console and the review pages; reviewer: the review pages only.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def account_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Create an account (asks for the password twice)."""
    from visionloop.core.accounts import add_reviewer, check_name

    accounts = _accounts(ctx)
    check_name(name)  # before asking for a password
    r = add_reviewer(accounts, name, _read_password(password_stdin), role)
    console.print(f"created {r.role.value} [bold]{r.name}[/]: they sign in at {SIGN_IN_AT[r.role.value]}")


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def account_list(ctx: Context, as_json: bool) -> None:
    """List the accounts with their roles."""
    from visionloop.core.accounts import list_reviewers

    items = list_reviewers(_accounts(ctx))
    data = [
        {
            "name": r.name,
            "role": r.role.value,
            "created_at": r.created_at.isoformat(),
            "password_changed_at": r.password_changed_at.isoformat(),
        }
        for r in items
    ]

    def render() -> None:
        table = Table("name", "role", "created", "password changed")
        for r in items:
            table.add_row(
                r.name,
                r.role.value,
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.password_changed_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)

    _emit(data, as_json, render)


@click.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def account_remove(ctx: Context, name: str, yes: bool) -> None:
    """Remove an account; its signed-in sessions end at once."""
    from visionloop.core.accounts import normalize_name, remove_reviewer

    accounts = _accounts(ctx)
    found = accounts.store.get_reviewer(normalize_name(name))
    if not yes and not click.confirm(f"Remove {found.role.value} {found.name!r}?", default=False):
        raise click.Abort()
    r = remove_reviewer(accounts, name)
    console.print(f"removed {found.role.value} {r.name}")


@click.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@pass_ctx
def account_passwd(ctx: Context, name: str, password_stdin: bool) -> None:
    """Set an account's password; its signed-in sessions end."""
    from visionloop.core.accounts import change_password, normalize_name

    accounts = _accounts(ctx)
    accounts.store.get_reviewer(normalize_name(name))  # before asking for a password
    r = change_password(accounts, name, _read_password(password_stdin))
    console.print(f"changed the password of {r.name}; their sessions have ended")


@user.command("role")
@click.argument("name")
@click.argument("role", type=ROLE_CHOICE)
@pass_ctx
def user_role(ctx: Context, name: str, role: str) -> None:
    """Make an account an operator or a reviewer (its sessions carry the new role at once)."""
    from visionloop.core.accounts import set_role

    r = set_role(_accounts(ctx), name, role)
    console.print(f"{r.name} is now {'an' if r.role.value == 'operator' else 'a'} {r.role.value}")


for _group in (user, reviewer):  # the same commands under both names
    for _command in (account_add, account_list, account_passwd, account_remove):
        _group.add_command(_command)


# --- pretrained analysis -------------------------------------------------------------------------------


@cli.group()
def analyze() -> None:
    """Describe images with the pretrained analysers: labels, text, moderation."""


def _analysis_inputs(images: tuple[str, ...]) -> list[bytes | ObjectRef]:
    """Each IMAGE as bytes (a file) or a reference to an object of the data folder's buckets (s3://…)."""
    from visionloop.core.keys import parse_s3_uri

    out: list[bytes | ObjectRef] = []
    for image in images:
        if image.startswith("s3://"):
            out.append(parse_s3_uri(image))
        elif Path(image).is_file():
            out.append(Path(image).read_bytes())
        else:
            raise InvalidInput(f"{image}: no such file (give a file, or s3://bucket/key of a local bucket)")
    return out


def _analyze_each(
    ctx: Context, images: tuple[str, ...], run: Callable[[Services, Any, bytes | ObjectRef], Any]
) -> list[Any]:
    from visionloop.analysis.registry import create_analyser

    svc, results = ctx.services, []
    for image, source in zip(images, _analysis_inputs(images), strict=True):
        try:
            results.append(run(svc, create_analyser, source))
        except VisionloopError as e:
            raise InvalidInput(f"{image}: {e.message}") from None
    return results


@analyze.command("labels")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--min-confidence", type=float, default=55.0, show_default=True, help="0-100.")
@click.option("--max-labels", type=int, help="At most this many labels per image.")
@click.option("--include", multiple=True, help="Only these labels (repeatable).")
@click.option("--exclude", multiple=True, help="Not these labels (repeatable).")
@click.option("--include-category", multiple=True, help="Only labels of these categories (repeatable).")
@click.option("--exclude-category", multiple=True, help="Not labels of these categories (repeatable).")
@click.option("--properties", is_flag=True, help="Also quality and dominant colours (IMAGE_PROPERTIES).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def analyze_labels(
    ctx: Context,
    images: tuple[str, ...],
    min_confidence: float,
    max_labels: int | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    include_category: tuple[str, ...],
    exclude_category: tuple[str, ...],
    properties: bool,
    as_json: bool,
) -> None:
    """Labels of IMAGES with boxes, parents and categories (DetectLabels)."""
    from visionloop.api.analyze import labels_json
    from visionloop.core import analyzing

    features = ("GENERAL_LABELS", "IMAGE_PROPERTIES") if properties else ("GENERAL_LABELS",)
    options = analyzing.LabelOptions(
        max_labels, min_confidence, features, include, exclude, include_category, exclude_category
    )
    results = _analyze_each(ctx, images, lambda svc, a, src: analyzing.detect_labels(svc, a, src, options))

    def render() -> None:
        for image, r in zip(images, results, strict=True):
            table = Table(
                "label", "confidence", "boxes", "parents", "category", title=image, caption=r.version
            )
            for x in r.labels:
                table.add_row(
                    x.name, f"{x.confidence:.1f}", str(len(x.instances)) if x.instances else "",
                    ", ".join(x.parents), ", ".join(x.categories),
                )  # fmt: skip
            console.print(table)
            if r.properties is not None:
                q = r.properties.quality
                colours = ", ".join(
                    f"{c.css_color} {c.pixel_percent:.0f}%" for c in r.properties.dominant_colors
                )
                console.print(
                    f"brightness {q.brightness:.0f}, sharpness {q.sharpness:.0f}, "
                    f"contrast {q.contrast or 0:.0f}; colours: {colours}"
                )

    _emit([{"image": i, **labels_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)


@analyze.command("text")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--min-confidence", type=float, default=0.0, show_default=True, help="Words' least confidence.")
@click.option("--words", is_flag=True, help="List the words too, not only the lines.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def analyze_text(
    ctx: Context, images: tuple[str, ...], min_confidence: float, words: bool, as_json: bool
) -> None:
    """Lines and words of text in IMAGES (DetectText)."""
    from visionloop.api.analyze import text_json
    from visionloop.core import analyzing

    options = analyzing.TextOptions(min_confidence=min_confidence)
    results = _analyze_each(ctx, images, lambda svc, a, src: analyzing.detect_text(svc, a, src, options))

    def render() -> None:
        for image, r in zip(images, results, strict=True):
            table = Table("type", "id", "line", "confidence", "text", title=image, caption=r.version)
            for d in r.detections:
                if d.kind == "LINE" or words:
                    parent = "" if d.parent_id is None else str(d.parent_id)
                    table.add_row(d.kind, str(d.id), parent, f"{d.confidence:.1f}", d.text)
            console.print(table)

    _emit([{"image": i, **text_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)


@analyze.command("moderation")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--min-confidence", type=float, default=50.0, show_default=True, help="0-100.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def analyze_moderation(ctx: Context, images: tuple[str, ...], min_confidence: float, as_json: bool) -> None:
    """Moderation labels of IMAGES (DetectModerationLabels; nudity and swimwear only)."""
    from visionloop.api.analyze import moderation_json
    from visionloop.core import analyzing

    options = analyzing.ModerationOptions(min_confidence)
    results = _analyze_each(
        ctx, images, lambda svc, a, src: analyzing.detect_moderation_labels(svc, a, src, options)
    )

    def render() -> None:
        for image, r in zip(images, results, strict=True):
            table = Table("label", "parent", "level", "confidence", title=image, caption=r.version)
            for m in r.labels:
                table.add_row(m.name, m.parent_name, str(m.level), f"{m.confidence:.1f}")
            if not r.labels:
                table.add_row("(nothing to moderate)", "", "", "")
            console.print(table)

    _emit([{"image": i, **moderation_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)


# --- human review ----------------------------------------------------------------------------------------


@cli.group()
def review() -> None:
    """Human review: a project's flow definition, its human loops, human vs model agreement."""


@review.command("flow")
@click.argument("project_name", metavar="PROJECT")
@click.option("--min-confidence", type=float, help="0-100: detections below start a loop.")
@click.option("--no-rule", is_flag=True, help="Detections start no loops (clears --min-confidence).")
@click.option("--audit-rate", type=float, help="0-1: share of confident detections sampled for audit.")
@click.option("--reviewers", type=int, help="Answers each item needs (1-9).")
@click.option("--instructions", help="Text shown to reviewers.")
@click.option("--labels", help="Comma-separated label choices (default: the project's labels).")
@click.option("--lease-minutes", type=float, help="An abandoned item is free again after this.")
@click.option("--time-limit-hours", type=float, help="An unanswered item expires after this.")
@click.option("--order", type=click.Choice(["oldest", "lowest_margin"]), help="Queue order.")
@click.option("--daily-budget", type=int, help="Items handed out per UTC day; 0: no cap.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def review_flow(ctx: Context, /, project_name: str, as_json: bool, no_rule: bool, **options: Any) -> None:
    """Show PROJECT's flow definition; with options, create it or change those settings."""
    from dataclasses import replace

    from visionloop.api.review import flow_json
    from visionloop.core import review as rv

    svc = ctx.services
    current = rv.find_flow(svc, project_name)
    given = {k: v for k, v in options.items() if v is not None}
    if given or no_rule or current is None:
        s = current.settings if current is not None else rv.FlowSettings()
        changes: dict[str, Any] = {}
        if no_rule:
            changes["min_confidence"] = None
        for option, field, convert in (
            ("min_confidence", "min_confidence", float),
            ("audit_rate", "audit_rate", float),
            ("reviewers", "reviewers_per_item", int),
            ("instructions", "instructions", str),
            ("order", "queue_order", rv.QueueOrder),
        ):
            if option in given:
                changes[field] = convert(given[option])
        if "labels" in given:
            changes["labels"] = tuple(x.strip() for x in given["labels"].split(",") if x.strip())
        if "lease_minutes" in given:
            changes["lease_seconds"] = round(given["lease_minutes"] * 60)
        if "time_limit_hours" in given:
            changes["time_limit_seconds"] = round(given["time_limit_hours"] * 3600)
        if "daily_budget" in given:
            changes["daily_budget"] = given["daily_budget"] or None
        region, account = ctx.settings.region, ctx.settings.account_id
        current = rv.put_flow(svc, project_name, replace(s, **changes), region=region, account=account)
    doc = flow_json(current, rv.flow_choices(svc, current))

    def render() -> None:
        table = Table("setting", "value", title=f"flow {current.name}")
        for key, value in doc.items():
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
        console.print(table)

    _emit(doc, as_json, render)


@review.command("loops")
@click.argument("project_name", metavar="PROJECT")
@click.option(
    "--status",
    type=click.Choice(["InProgress", "Completed", "Failed", "Stopping", "Stopped"]),
    help="Only these.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def review_loops(ctx: Context, project_name: str, status: str | None, limit: int, as_json: bool) -> None:
    """PROJECT's human loops, newest first."""
    from visionloop.api.review import loop_json
    from visionloop.core import review as rv

    flow = rv.find_flow(ctx.services, project_name)
    state = rv.LoopStatus(status) if status else None
    loops = [] if flow is None else rv.list_loops(ctx.services, flow, status=state, limit=limit)

    def render() -> None:
        table = Table("name", "status", "purpose", "created", "model", "human", "result")
        for lp in loops:
            table.add_row(
                lp.name,
                lp.status.value,
                lp.purpose.value,
                f"{lp.created_at:%Y-%m-%d %H:%M}",
                lp.model_answer or "",
                lp.human_answer or "",
                lp.result.value if lp.result else "",
            )
        console.print(table)

    _emit([loop_json(lp) for lp in loops], as_json, render)


@review.command("agreement")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def review_agreement(ctx: Context, project_name: str, as_json: bool) -> None:
    """How often reviewers agreed with the model, per label (Completed loops)."""
    from visionloop.core import review as rv

    rows = rv.agreement_by_label(ctx.services, project_name)

    def render() -> None:
        table = Table("label", "model said", "human agreed", "rate", "human said")
        for a in rows:
            rate = "" if a.rate is None else f"{100 * a.rate:.0f}%"
            table.add_row(a.label, str(a.model_said), str(a.agreed), rate, str(a.human_said))
        console.print(table)

    _emit([a.__dict__ for a in rows], as_json, render)


# --- parameters, events and notifications (continuous improvement) --------------------------------------


def _who() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:128]
    except (OSError, KeyError):  # no user name in this environment
        return "cli"


def _print_parameters(project_name: str, values: dict[str, Any]) -> None:
    from visionloop.core.parameters import SPECS

    table = Table("parameter", "value", "default", title=f"parameters of {project_name}")
    for key, value in values.items():
        table.add_row(key, json.dumps(value), json.dumps(SPECS[key].default))
    console.print(table)


@cli.group()
def params() -> None:
    """A project's parameters: the rules of continuous improvement (docs/workflow.md)."""


@params.command("show")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def params_show(ctx: Context, project_name: str, as_json: bool) -> None:
    """Every parameter of PROJECT, with its default."""
    from visionloop.core import parameters

    values = parameters.get_parameters(ctx.services, project_name).to_dict()
    _emit(values, as_json, lambda: _print_parameters(project_name, values))


@params.command("set")
@click.argument("project_name", metavar="PROJECT")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def params_set(ctx: Context, project_name: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Change parameters of PROJECT, e.g. min_confidence=70 human_review_enabled=true. Every value is
    checked before any is changed."""
    from visionloop.core import parameters

    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in assignments:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InvalidInput(f"{item[:80]!r} is not KEY=VALUE")
        if key in changes or key in errors:
            raise InvalidInput(f"{key} is given twice")
        try:
            changes[key] = parameters.parse_value(key, text)
        except InvalidInput as e:
            errors[key] = e.message
    if errors:
        raise InvalidInput("; ".join(errors.values()), errors=errors)
    done = parameters.update_parameters(ctx.services, project_name, changes, changed_by=_who())

    def render() -> None:
        for c in done.changes:
            console.print(f"{c.key}: {json.dumps(c.old)} → {json.dumps(c.new)}")
        if not done.changes:
            console.print("nothing changed: every value was already set")

    _emit([c.to_dict() for c in done.changes], as_json, render)


@params.command("history")
@click.argument("project_name", metavar="PROJECT")
@click.option("--key", help="Only this parameter's changes.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def params_history(ctx: Context, project_name: str, key: str | None, limit: int, as_json: bool) -> None:
    """The recorded changes of PROJECT's parameters, newest first: who, when, old and new value."""
    from visionloop.core import parameters

    found = parameters.parameter_history(ctx.services, project_name, key=key, limit=limit)

    def render() -> None:
        table = Table("when", "who", "parameter", "old", "new", title=f"parameter changes of {project_name}")
        for c in found:
            table.add_row(
                c.changed_at.isoformat(timespec="seconds"),
                c.changed_by,
                c.key,
                json.dumps(c.old),
                json.dumps(c.new),
            )
        console.print(table)

    _emit([c.to_dict() for c in found], as_json, render)


@cli.command()
@click.argument("project_name", metavar="PROJECT")
@click.option("--type", "type_", help="Only events of this type (e.g. training_completed).")
@click.option("--since", help="Only events at or after this ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="The newest N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def events(
    ctx: Context, project_name: str, type_: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """PROJECT's events (what continuous improvement did), oldest first."""
    from visionloop.api.parameters import parse_time
    from visionloop.core import events as ev

    svc = ctx.services
    when = parse_time(since, "--since")
    found = ev.list_events(svc, project_name, type=type_, since=when, limit=ev.MAX_LIST)[-limit:]

    def render() -> None:
        table = Table("id", "when", "type", "payload", title=f"events of {project_name}")
        for e in found:
            payload = json.dumps(dict(e.payload), sort_keys=True)
            table.add_row(str(e.id), e.created_at.isoformat(timespec="seconds"), e.type.value, payload)
        console.print(table)

    _emit([e.to_dict() for e in found], as_json, render)


@cli.group()
def notify() -> None:
    """A project's notification channels (webhooks, e-mail) and their deliveries."""


@notify.command("add")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name")
@click.option("--webhook", "url", help="Send events as signed JSON POSTs to this http(s) URL.")
@click.option("--email", "addresses", help="Send events as e-mails to these comma-separated addresses.")
@click.option("--events", "event_types", help="Comma-separated event types (default: all but detection).")
@click.option("--secret-stdin", is_flag=True, help="Read the webhook's HMAC secret from standard input.")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_add(
    ctx: Context,
    project_name: str,
    name: str,
    url: str | None,
    addresses: str | None,
    event_types: str | None,
    secret_stdin: bool,
    disabled: bool,
    as_json: bool,
) -> None:
    """Add channel NAME to PROJECT: --webhook URL or --email ADDRESSES. A webhook's secret (generated
    unless read with --secret-stdin) is printed once."""
    from visionloop.core import notifications

    if (url is None) == (addresses is None):
        raise InvalidInput("give either --webhook URL or --email ADDRESSES")
    secret = sys.stdin.readline().strip() if secret_stdin else None
    channel = notifications.add_channel(
        ctx.services,
        project_name,
        name,
        "webhook" if url is not None else "email",
        url=url,
        addresses=addresses,
        events=event_types,
        secret=secret,
        enabled=not disabled,
        allow_private=ctx.settings.webhook_allow_private,
    )
    doc = channel.to_dict(with_secret=True)

    def render() -> None:
        console.print(
            f"channel {channel.name} added ({channel.kind.value}: {channel.url or doc['addresses']})"
        )
        if channel.secret is not None:
            console.print(f"secret (shown once): {channel.secret}", markup=False)

    _emit(doc, as_json, render)


@notify.command("list")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_list(ctx: Context, project_name: str, as_json: bool) -> None:
    """PROJECT's notification channels."""
    from visionloop.core import notifications

    found = notifications.list_channels(ctx.services, project_name)

    def render() -> None:
        table = Table("name", "kind", "target", "events", "enabled", title=f"channels of {project_name}")
        for c in found:
            target = c.url or ", ".join(c.addresses)
            table.add_row(c.name, c.kind.value, target, ", ".join(c.events), "yes" if c.enabled else "no")
        console.print(table)

    _emit([c.to_dict() for c in found], as_json, render)


@notify.command("set")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name")
@click.option("--enable/--disable", "enabled", default=None, help="Start or stop sending to it.")
@click.option("--events", "event_types", help="Comma-separated event types it wants.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_set(
    ctx: Context, project_name: str, name: str, enabled: bool | None, event_types: str | None, as_json: bool
) -> None:
    """Enable or disable channel NAME, or change the events it wants."""
    from visionloop.core import notifications

    channel = notifications.update_channel(
        ctx.services, project_name, name, enabled=enabled, events=event_types
    )
    doc = channel.to_dict()
    _emit(
        doc,
        as_json,
        lambda: console.print(
            f"channel {channel.name}: enabled={channel.enabled}, events={', '.join(channel.events)}"
        ),
    )


@notify.command("remove")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name")
@pass_ctx
def notify_remove(ctx: Context, project_name: str, name: str) -> None:
    """Remove channel NAME with its delivery records."""
    from visionloop.core import notifications

    notifications.remove_channel(ctx.services, project_name, name)
    console.print(f"channel {name} removed")


@notify.command("deliveries")
@click.argument("project_name", metavar="PROJECT")
@click.option("--channel", help="Only this channel's deliveries.")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), help="Only these.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_deliveries(
    ctx: Context, project_name: str, channel: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """PROJECT's notification deliveries, newest first, with their attempts."""
    from visionloop.core import notifications

    svc = ctx.services
    found = notifications.list_deliveries(svc, project_name, channel=channel, status=status, limit=limit)
    docs = [
        {
            **d.to_dict(),
            "attempts": [a.to_dict() for a in notifications.list_attempts(svc, project_name, d.id)],
        }
        for d in found
    ]

    def render() -> None:
        table = Table(
            "id",
            "channel",
            "event",
            "status",
            "attempts",
            "last error",
            title=f"deliveries of {project_name}",
        )
        for d in found:
            table.add_row(
                str(d.id), d.channel, d.event.type.value, d.status.value, str(d.attempts), d.last_error or ""
            )
        console.print(table)

    _emit(docs, as_json, render)


@notify.command("deliver")
@pass_ctx
def notify_deliver(ctx: Context) -> None:
    """Send the notifications due now, here and once (the server sends them by itself)."""
    from visionloop.bootstrap import build_notifier

    made = build_notifier(ctx.services, ctx.settings).run_once()
    console.print(f"{made} attempt(s) made")


# --- database ------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("migrate")
@pass_ctx
def db_migrate(ctx: Context) -> None:
    """Apply the schema migrations (the server and CLI also do this on start)."""
    from visionloop.storage.sql import SqlRepository

    SqlRepository(ctx.settings.resolved_database_url)
    console.print("database is at the newest schema")


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except VisionloopError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
