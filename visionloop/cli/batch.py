"""``visionloop batch``: batch inference over a bucket prefix (core.batch, workflows.batch)."""

from __future__ import annotations

import functools
import time

import click

from visionloop.cli.app import Context, cli, console, emit, err_console, pass_ctx
from visionloop.core.batch import DEFAULT_PART_SIZE, BatchProgress
from visionloop.settings import Settings
from visionloop.workflows.inference import EngineFactory


def engine_factory(settings: Settings) -> EngineFactory:
    """The engine every worker loads the model version with (the real one, as the server's units)."""
    from visionloop.bootstrap import build_engine

    return functools.partial(build_engine, settings)


class _Ticker:
    """Prints progress to stderr at most once a second, and always the last part."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, p: BatchProgress) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0 or p.done == p.total:
            self.last = now
            err_console.print(
                f"{p.done}/{p.total} images ({p.failed} failed), {p.images_per_second:g} images/s"
            )


@cli.command("batch")
@click.argument("model", metavar="PROJECT/VERSION|labels|text|moderation")
@click.argument("source", metavar="s3://BUCKET/PREFIX/")
@click.option("--out", required=True, metavar="s3://BUCKET/PREFIX/", help="Where the JSON Lines go.")
@click.option("--ray-address", help="Run on this Ray cluster ('auto', 'ray://host:10001', or 'local').")
@click.option("--workers", type=int, default=0, show_default=True, help="Processes or actors (0: 1 per CPU).")
@click.option("--part-size", type=int, default=DEFAULT_PART_SIZE, show_default=True, help="Images per part.")
@click.option("--min-confidence", type=float, help="0-100; default: the model's or analyser's own.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def batch(
    ctx: Context,
    model: str,
    source: str,
    out: str,
    ray_address: str | None,
    workers: int,
    part_size: int,
    min_confidence: float | None,
    as_json: bool,
) -> None:
    """Answer every JPEG/PNG under SOURCE (a bucket prefix) with MODEL into --out: JSON Lines parts, a
    progress object and a summary. Run it again with the same arguments to resume after a stop."""
    from visionloop.workflows.batch import run_batch_job

    settings = ctx.settings
    summary = run_batch_job(
        settings,
        model,
        source,
        out,
        engine_factory=engine_factory(settings),
        workers=workers,
        ray_address=ray_address,
        part_size=part_size,
        min_confidence=min_confidence,
        on_progress=None if as_json else _Ticker(),
    )

    def render() -> None:
        console.print(
            f"{summary.done} images answered into {out} ({summary.failed} failed, {summary.resumed} from "
            f"an earlier run, {summary.skipped} objects not JPEG/PNG) in {summary.parts} parts, "
            f"{summary.images_per_second:g} images/s"
        )
        for code, n in sorted(summary.errors.items()):
            console.print(f"  {code}: {n}")

    emit(summary.as_json(), as_json, render)
