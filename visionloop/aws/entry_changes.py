"""UpdateDatasetEntries' promise (docs/aws.md): a line that is malformed or does not fit the project's task
answers InvalidParameterException and nothing changes. Everything a line says on its own is checked here,
before anything is written: its JSON and attributes, its labels, the kind of labelling against the
project's task (bounding boxes in a classification project and image-level labels in a detection
project, two labels on one image of a single-label project), boxes with no size. What needs the image
(a missing or unreadable object, a box outside it) is left to the import, which reports it."""

from __future__ import annotations

from collections.abc import Sequence

from visionloop.aws.exceptions import InvalidParameterException
from visionloop.core.datasets import infer_task, is_blank
from visionloop.core.entities import Project, TaskType
from visionloop.core.labels import check_label
from visionloop.core.manifests import ManifestLine, parse_manifest
from visionloop.core.services import Services
from visionloop.errors import InvalidInput

SHOWN = 3  # problems named in the message


def check_changes(svc: Services, project: Project, ground_truth: bytes) -> None:
    """InvalidParameterException naming the first problems when any line of ``ground_truth`` is malformed
    or does not fit ``project``'s task (the task its lines give it when it is still blank)."""
    try:
        text = ground_truth.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidParameterException("Changes.GroundTruth is not UTF-8 text.") from None
    lines = [line for line in text.splitlines() if line.strip()]  # blank lines are skipped
    problems: list[str] = []
    good: list[ManifestLine] = []
    for parsed in parse_manifest(lines):
        if isinstance(parsed, ManifestLine):
            good.append(parsed)
        else:
            problems.append(f"{parsed.ref}: {parsed.code}: {parsed.message}")
    task = project.task
    if is_blank(svc, project):  # the import gives a blank project the task its lines imply
        task = infer_task(good) or task
    problems.extend(p for line in good if (p := _misfit(line, task)) is not None)
    if problems:
        raise InvalidParameterException(_message(problems, len(lines)))


def _misfit(line: ManifestLine, task: TaskType) -> str | None:
    """Why ``line`` cannot go into a project of ``task``, or None when it can."""
    where = f"line {line.line_no} ({line.source_ref})"
    code = "ERROR_UNSUPPORTED_USE_CASE_TYPE"
    if line.kind == "detection" and task is not TaskType.DETECTION:
        return f"{where}: {code}: bounding boxes cannot be added to a {task.value} project"
    if line.kind == "classification" and task is TaskType.DETECTION:
        return f"{where}: {code}: an object_detection project's lines give bounding boxes, not image labels"
    if task is TaskType.CLASSIFICATION and len(line.labels) > 1:
        return f"{where}: {code}: the project is single-label but the line gives {len(line.labels)} labels"
    for label in (*line.labels, *(b.label for b in line.boxes)):
        try:
            check_label(label)
        except InvalidInput as e:
            return f"{where}: ERROR_INVALID_LABEL_NAME_LENGTH: {e.message}"
    for i, b in enumerate(line.boxes):
        if b.width <= 0 or b.height <= 0:
            return f"{where}: ERROR_INVALID_BOUNDING_BOX: box {i} ({b.label}) has a zero or negative size"
    return None


def _message(problems: Sequence[str], total: int) -> str:
    shown = "; ".join(problems[:SHOWN])
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return f"{len(problems)} of {total} lines cannot be used, so nothing was changed: {shown}{more}"
