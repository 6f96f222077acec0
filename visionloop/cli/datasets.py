"""``visionloop dataset``: import, inspect, split and export datasets."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, err_console, pass_ctx
from visionloop.core.entities import DatasetType, ImportReport
from visionloop.errors import InvalidInput


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
    emit({**report.to_dict(), "seconds": round(seconds, 2)}, as_json, lambda: _print_report(report, seconds))


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

    emit(st.to_dict(), as_json, render)


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

    emit(data, as_json, render)


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
