"""``visionloop faces``: faces in images (detect, compare) and face collections (index, search, users)."""

from __future__ import annotations

import click
from rich.table import Table

from visionloop.cli.analyze import _analysis_inputs, _analyze_each
from visionloop.cli.app import Context, cli, console, emit, pass_ctx
from visionloop.core.records.faces import FaceDetail


@cli.group()
def faces() -> None:
    """Detect and compare faces; manage face collections and search them."""


def _box(f: FaceDetail) -> str:
    b = f.box
    return f"{b.left:.2f} {b.top:.2f} {b.width:.2f}×{b.height:.2f}"


def _pose(f: FaceDetail) -> str:
    return f"{f.pose.yaw:.0f} {f.pose.pitch:.0f} {f.pose.roll:.0f}"


@faces.command("detect")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option(
    "--attributes",
    "-a",
    multiple=True,
    default=("DEFAULT",),
    show_default=True,
    help="DEFAULT, ALL or Rekognition's attribute names (repeatable); EYES_OPEN, MOUTH_OPEN are estimated.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def faces_detect(ctx: Context, images: tuple[str, ...], attributes: tuple[str, ...], as_json: bool) -> None:
    """Faces in IMAGES (files or s3://bucket/key): box, confidence, pose, quality (DetectFaces)."""
    from visionloop.api.faces import faces_json
    from visionloop.core import faces as use_cases

    results = _analyze_each(ctx, images, lambda svc, a, src: use_cases.detect_faces(svc, a, src, attributes))

    def render() -> None:
        for image, r in zip(images, results, strict=True):
            if not r.faces:
                console.print(f"{image}: no face ({r.version})")
                continue
            table = Table("#", "box", "conf.", "yaw pitch roll", "light sharp", "age", title=image)
            notes = []
            for i, f in enumerate(r.faces, 1):
                quality = f"{f.quality.brightness:.0f} {f.quality.sharpness:.0f}"
                age = f"{f.age_range[0]}-{f.age_range[1]}" if f.age_range else ""
                table.add_row(str(i), _box(f), f"{f.confidence:.1f}", _pose(f), quality, age)
                found = [f"{a.name} {a.value} ({a.confidence:.0f})" for a in f.attributes]
                found += [f"{e.type} ({e.confidence:.0f})" for e in f.emotions[:2]]  # the two likeliest
                if found:
                    notes.append(f"face {i}: {', '.join(found)}")
            table.caption = r.version
            console.print(table)
            for note in notes:
                console.print(note)

    emit([{"image": i, **faces_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)


@faces.command("compare")
@click.argument("source", metavar="SOURCE")
@click.argument("target", metavar="TARGET")
@click.option("--similarity-threshold", type=float, default=80.0, show_default=True, help="0-100.")
@click.option(
    "--quality-filter",
    type=click.Choice(["NONE", "AUTO", "LOW", "MEDIUM", "HIGH"]),
    default="NONE",
    show_default=True,
    help="Leave out faces under this quality bar.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def faces_compare(
    ctx: Context, source: str, target: str, similarity_threshold: float, quality_filter: str, as_json: bool
) -> None:
    """The largest face of SOURCE against each face of TARGET (CompareFaces)."""
    from visionloop.api.faces import compare_json
    from visionloop.core import faces as use_cases

    first, second = _analysis_inputs((source, target))
    options = use_cases.CompareOptions(similarity_threshold, quality_filter)
    r = use_cases.compare_faces(ctx.services, ctx.analysers, first, second, options)

    def render() -> None:
        table = Table(
            "target face", "similarity", "match", "conf.", "yaw pitch roll",
            title=f"{source} → {target}", caption=f"source face at {_box(r.source_face)}; {r.version}",
        )  # fmt: skip
        for m in r.matches:
            table.add_row(
                _box(m.face), f"{m.similarity:.1f}", "yes", f"{m.face.confidence:.1f}", _pose(m.face)
            )
        for f in r.unmatched:
            table.add_row(_box(f), "", "no", f"{f.confidence:.1f}", _pose(f))
        console.print(table)

    emit({"source": source, "target": target, **compare_json(r)}, as_json, render)
