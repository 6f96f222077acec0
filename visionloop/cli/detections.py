"""``visionloop detections``: the detection log of a project."""

from __future__ import annotations

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, parse_when, pass_ctx


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
        parse_when(since, "--since"),
        parse_when(until, "--until"),
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
    emit(data, as_json, render)
