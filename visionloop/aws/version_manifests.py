"""The manifests DescribeProjectVersions points to for a trained version, as real objects in the version's
OutputConfig bucket: what code written for AWS reads from ``TrainingDataResult``, ``TestingDataResult``
and ``ManifestSummary`` (Rekognition's "Getting the validation results").

For each of the training and the testing data, three Ground Truth manifests:

* ``Input``: every line of the dataset when the version was created: its entries, then the lines its
  imports rejected, as given;
* ``Output``: the lines the version trains (or is tested) on, the entries with labels (with boxes, for
  an object-detection project);
* ``Validation`` (``…_manifest_with_validation.json``): the input lines, each one not used carrying
  ``errors``: a rejected line its import's errors (an invalid line), an entry without annotations
  ``WARNING_NO_ANNOTATIONS`` (an ignored line, as Custom Labels counts it);

and ``manifest_summary.json`` in the format of Custom Labels' manifest summary (``statistics`` of the
training and the testing data: use case, line counts, indices of invalid lines; ``errors``).

They are written when CreateProjectVersion takes its snapshot (core.training), from that snapshot, so
they name exactly the images and labels the version uses, whatever happens to the datasets afterwards;
each line is the one ListDatasetEntries would answer for that entry with the labels the snapshot took."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from visionloop.core import projects
from visionloop.core.entities import Box, Dataset, DatasetEntry, DatasetType, ModelVersion, Project, TaskType
from visionloop.core.entries import rejected_lines
from visionloop.core.entry_lines import entry_line, rejected_line
from visionloop.core.manifests import dumps_line
from visionloop.core.services import Services
from visionloop.core.training import SNAPSHOTS_BUCKET

SUMMARY_VERSION = 1
NO_ANNOTATIONS = {
    "code": "WARNING_NO_ANNOTATIONS",
    "message": "The line has no annotations for the project's task; it is not used.",
}


@dataclass(frozen=True)
class DataManifests:
    """The keys of one side's (training or testing) three manifests."""

    input: str
    output: str
    validation: str


@dataclass(frozen=True)
class VersionManifests:
    """Where a version's manifests lie; ``auto_create``: its test data was split off its training data."""

    bucket: str
    training: DataManifests
    testing: DataManifests
    summary: str
    auto_create: bool


def locate(bucket: str, prefix: str, project: str, version: str, auto_create: bool) -> VersionManifests:
    """Where the manifests of ``project``'s ``version`` lie under the OutputConfig prefix (the same place
    whoever asks: the version's creation writes there, its descriptions and its copies read there)."""
    base = "/".join(p for p in (prefix, "manifests", project, version) if p)

    def side(name: str) -> DataManifests:
        return DataManifests(
            f"{base}/{name}_input.manifest",
            f"{base}/{name}_output.manifest",
            f"{base}/{name}_manifest_with_validation.json",
        )

    return VersionManifests(
        bucket, side("training"), side("testing"), f"{base}/manifest_summary.json", auto_create
    )


@dataclass(frozen=True)
class _Line:
    text: dict[str, Any]  # the line as given (or as ListDatasetEntries writes it)
    errors: tuple[Mapping[str, str], ...] = ()  # why it is not used; none: it is
    invalid: bool = False  # rejected by its import (else, when not used: ignored, a warning)


def write_manifests(svc: Services, project: Project, version: ModelVersion, where: VersionManifests) -> None:
    """Write the seven objects for ``version`` from its snapshot (see the module doc)."""
    snap = json.loads(svc.store.get(SNAPSHOTS_BUCKET, f"{version.snapshot_id}.json"))
    entries = {
        e.content_hash: e for d in projects.list_datasets(svc, project) for e in projects.all_entries(svc, d)
    }
    job = f"visionloop/{project.name}/{version.name}"
    statistics: dict[str, Any] = {}
    svc.buckets.create_bucket(where.bucket)
    for name, rows, dataset_type, keys in (
        ("training", snap["train"], DatasetType.TRAIN, where.training),
        ("testing", snap["test"], DatasetType.TEST, where.testing),
    ):
        dataset = projects.find_dataset(svc, project, dataset_type)
        rejected = [] if dataset is None else _rejected(svc, dataset)
        lines = _lines(rows, entries, project.task, job) + rejected
        statistics[name] = _statistics(lines, project.task)
        validation = [{**ln.text, "errors": list(ln.errors)} if ln.errors else ln.text for ln in lines]
        svc.buckets.put(where.bucket, keys.input, _manifest([ln.text for ln in lines]))
        svc.buckets.put(where.bucket, keys.output, _manifest([ln.text for ln in lines if not ln.errors]))
        svc.buckets.put(where.bucket, keys.validation, _manifest(validation))
    summary = {"version": SUMMARY_VERSION, "statistics": statistics, "errors": []}
    svc.buckets.put(where.bucket, where.summary, json.dumps(summary, indent=2).encode())


def _lines(
    rows: Sequence[Mapping[str, Any]], entries: Mapping[str, DatasetEntry], task: TaskType, job: str
) -> list[_Line]:
    """Each snapshot row as the line of its entry with the labels and boxes the snapshot took."""
    out = []
    for row in rows:
        entry = entries.get(row["hash"])
        if entry is None:  # deleted between the snapshot and now (the same request): nothing names it
            continue
        boxes = tuple(Box(**b) for b in row.get("boxes", ()))
        taken = dataclasses.replace(entry, labels=tuple(row["labels"]), boxes=boxes)
        used = bool(boxes) if task is TaskType.DETECTION else bool(taken.labels)
        line = entry_line(taken, task, job)
        line.pop("cl-metadata", None)  # ListDatasetEntries' addition, no part of a manifest
        out.append(_Line(line, () if used else (NO_ANNOTATIONS,)))
    return out


def _rejected(svc: Services, dataset: Dataset) -> list[_Line]:
    """The lines the dataset's imports rejected, as given, with their errors (never trained on)."""
    out = []
    for r in rejected_lines(svc, dataset)[1]:
        line = rejected_line(r)
        errors = tuple(line.pop("errors"))
        line.pop("cl-metadata", None)
        out.append(_Line(line, errors, invalid=True))
    return out


def _statistics(lines: Sequence[_Line], task: TaskType) -> dict[str, Any]:
    """One side's statistics as Custom Labels' manifest summary gives them; line indices count from 0 in
    the Input and Validation manifests."""
    invalid = [i for i, ln in enumerate(lines) if ln.invalid]
    ignored = sum(1 for ln in lines if ln.errors and not ln.invalid)
    return {
        "use_case": "OBJECT_LOCALIZATION" if task is TaskType.DETECTION else "IMAGE_LEVEL_LABELS",
        "total_json_lines": len(lines),
        "valid_json_lines": len(lines) - len(invalid) - ignored,
        "invalid_json_lines": len(invalid),
        "ignored_json_lines": ignored,
        "error_json_line_indices": invalid,
        "errors": [],
    }


def _manifest(lines: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(dumps_line(dict(ln)) + "\n" for ln in lines).encode()
