"""``visionloop analyze``: the pretrained analysers (labels, text, moderation)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, pass_ctx
from visionloop.core.keys import ObjectRef
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, VisionloopError


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
    svc, results, analysers = ctx.services, [], ctx.analysers
    for image, source in zip(images, _analysis_inputs(images), strict=True):
        try:
            results.append(run(svc, analysers, source))
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

    emit([{"image": i, **labels_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)


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

    emit([{"image": i, **text_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)


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

    emit([{"image": i, **moderation_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)
