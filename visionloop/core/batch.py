"""Batch inference over a bucket prefix: every JPEG/PNG under ``s3://bucket/prefix/`` through a model
version (DetectCustomLabels' answer) or a pretrained analyser (labels, text, moderation), written as
JSON Lines parts under an output prefix.

Layout of the output prefix::

    part-00001.jsonl   one line per image: {"key": ..., "answer": {...}} or {"key": ..., "error": {...}}
    part-00002.jsonl   ...  (each part written whole, in one put: a part is there or it is not)
    _batch.json        progress: state, total, done, failed, parts, images/s (rewritten about once a second)
    _summary.json      written once every image has its line

The parts are the truth of what is done: a run that was killed is run again with the same arguments, reads
the keys of the parts already written and skips them, so every image ends up in exactly one line. Who
computes the lines is a ``ChunkRunner`` (worker processes or a Ray cluster, visionloop.workflows.batch):
this module only lists, skips, chunks, writes and counts, and needs no framework."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from visionloop.core.analyzing import KINDS
from visionloop.core.keys import parse_s3_prefix
from visionloop.core.services import Services
from visionloop.core.training import find_version, load_artifact
from visionloop.errors import InvalidInput, ObjectNotFound, VisionloopError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PART_PREFIX, PART_SUFFIX = "part-", ".jsonl"
PROGRESS, SUMMARY = "_batch.json", "_summary.json"
DEFAULT_PART_SIZE = 100
PROGRESS_SECONDS = 1.0  # the progress object is rewritten at most this often (a cluster ends parts fast)
MAX_PART_SIZE = 10_000
CUSTOM_LABELS = "custom_labels"

Line = dict[str, Any]


@dataclass(frozen=True)
class Chunk:
    """The images of one part: keys in the source bucket."""

    bucket: str
    keys: tuple[str, ...]


class ChunkRunner(Protocol):
    """Answers chunks, in any order, each as one line per key (``answer_each`` builds them)."""

    def __call__(self, chunks: Sequence[Chunk]) -> Iterator[list[Line]]: ...


@dataclass(frozen=True)
class BatchModel:
    """What a worker needs to answer images, picklable: a model version's artifact files and thresholds
    (kind ``custom_labels``) or a pretrained analyser's kind (``labels``, ``text``, ``moderation``)."""

    kind: str
    name: str
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    thresholds: dict[str, float] = field(default_factory=dict)
    min_confidence: float | None = None


@dataclass
class BatchProgress:
    """Where a run stands; ``done`` counts every image with a line (``failed`` of them with an error)."""

    model: str
    source: str
    out: str
    total: int
    done: int = 0
    failed: int = 0
    parts: int = 0
    skipped: int = 0  # objects under the source prefix that are not JPEG/PNG by name
    resumed: int = 0  # images found done by an earlier run
    resumed_parts: int = 0  # the parts it wrote
    state: str = "running"
    seconds: float = 0.0
    images_per_second: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model(svc: Services, model: str, min_confidence: float | None = None) -> BatchModel:
    """``PROJECT/VERSION`` (a trained model version, read and verified here once), ``PROJECT`` (its newest
    trained version) or an analyser kind."""
    if model in KINDS:
        return BatchModel(model, model, min_confidence=min_confidence)
    if min_confidence is not None and not 0 <= min_confidence <= 100:
        raise InvalidInput("min_confidence must be between 0 and 100")
    project, _, version_name = model.partition("/")
    if not project:
        raise InvalidInput(f"{model!r} is neither PROJECT/VERSION nor one of {', '.join(KINDS)}")
    version = find_version(svc, project, version_name or None)
    files = load_artifact(svc, version)
    name = f"{project}/{version.name}"
    return BatchModel(CUSTOM_LABELS, name, files, dict(version.thresholds), min_confidence)


def check_prefixes(source: str, out: str) -> None:
    """Both are s3://bucket/prefix/ references, and the output does not contain the source (its parts
    would be read as images). An output inside the source is fine: it is left out of the listing."""
    bucket, prefix = parse_s3_prefix(source)
    out_bucket, out_prefix = parse_s3_prefix(out)
    if bucket == out_bucket and prefix.startswith(out_prefix):
        raise InvalidInput(f"the output prefix {out} must not contain the source prefix {source}")


def check_job(svc: Services, model: str, source: str, out: str) -> None:
    """Refuse a job that cannot run before it starts: bad prefixes or an unknown model (its artifact is
    read later, by the job)."""
    check_prefixes(source, out)
    if model not in KINDS:
        project, _, version_name = model.partition("/")
        if not project:
            raise InvalidInput(f"{model!r} is neither PROJECT/VERSION nor one of {', '.join(KINDS)}")
        find_version(svc, project, version_name or None)


def answer_each(keys: Iterable[str], answer: Callable[[str], dict[str, Any]]) -> list[Line]:
    """One line per key: the answer, or the error that image alone met (the others go on)."""
    lines = []
    for key in keys:
        try:
            lines.append({"key": key, "answer": answer(key)})
        except VisionloopError as e:
            lines.append(error_line(key, type(e).__name__, e.message))
        except Exception as e:  # an engine bug on one image must not lose the others' answers
            lines.append(error_line(key, "InternalError", f"{type(e).__name__}: {e}"))
    return lines


def error_line(key: str, code: str, message: str) -> Line:
    return {"key": key, "error": {"code": code, "message": message}}


def source_keys(svc: Services, source: str, out: str) -> tuple[str, list[str], int]:
    """The source bucket, its JPEG/PNG keys under the prefix (key order; the output prefix left out when
    it lies inside the source) and how many other objects were skipped."""
    bucket, prefix = parse_s3_prefix(source)
    out_bucket, out_prefix = parse_s3_prefix(out)
    keys, skipped = [], 0
    for info in svc.buckets.list_objects(bucket, prefix):
        if bucket == out_bucket and info.key.startswith(out_prefix):
            continue
        if info.key.lower().endswith(IMAGE_SUFFIXES):
            keys.append(info.key)
        else:
            skipped += 1
    return bucket, keys, skipped


def written_parts(svc: Services, out: str) -> tuple[dict[str, Line], int]:
    """The lines of the parts already under the output prefix, by key, and the highest part number."""
    bucket, prefix = parse_s3_prefix(out)
    lines: dict[str, Line] = {}
    highest = 0
    try:
        found = list(svc.buckets.list_objects(bucket, prefix + PART_PREFIX))
    except ObjectNotFound:  # no such bucket: nothing written yet
        return {}, 0
    for info in found:
        name = info.key[len(prefix) :]
        number = name[len(PART_PREFIX) : -len(PART_SUFFIX)]
        if "/" in name or not name.endswith(PART_SUFFIX) or not number.isdigit():
            continue
        highest = max(highest, int(number))
        for raw in svc.buckets.get(bucket, info.key).decode("utf-8").splitlines():
            if raw.strip():
                line = json.loads(raw)
                lines[line["key"]] = line
    return lines, highest


def chunked(bucket: str, keys: Sequence[str], size: int) -> list[Chunk]:
    return [Chunk(bucket, tuple(keys[i : i + size])) for i in range(0, len(keys), size)]


def _count(progress: BatchProgress, lines: Iterable[Line]) -> None:
    for line in lines:
        progress.done += 1
        if "error" in line:
            progress.failed += 1
            code = line["error"]["code"]
            progress.errors[code] = progress.errors.get(code, 0) + 1


def _put_json(svc: Services, out: str, name: str, doc: dict[str, Any]) -> None:
    bucket, prefix = parse_s3_prefix(out)
    svc.buckets.put(bucket, prefix + name, json.dumps(doc, indent=2).encode())


def run_batch(
    svc: Services,
    model: BatchModel,
    source: str,
    out: str,
    runner: ChunkRunner,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    on_progress: Callable[[BatchProgress], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BatchProgress:
    """Answer every image under ``source`` not answered yet under ``out``, one part per chunk as the
    runner finishes it, then write the summary. Running it again after a kill resumes; after a finished
    run it only rewrites the summary."""
    if not 1 <= part_size <= MAX_PART_SIZE:
        raise InvalidInput(f"part_size must be between 1 and {MAX_PART_SIZE}")
    check_prefixes(source, out)
    bucket, keys, skipped = source_keys(svc, source, out)  # ObjectNotFound without the bucket
    out_bucket, out_prefix = parse_s3_prefix(out)
    svc.buckets.create_bucket(out_bucket)
    earlier, part = written_parts(svc, out)
    wanted = set(keys)
    progress = BatchProgress(model.name, source, out, total=len(keys), skipped=skipped)
    _count(progress, (line for key, line in earlier.items() if key in wanted))
    progress.resumed, progress.parts, progress.resumed_parts = progress.done, part, part
    todo = [k for k in keys if k not in earlier]
    began = written = clock()
    _put_json(svc, out, PROGRESS, progress.as_json())
    for lines in runner(chunked(bucket, todo, part_size)):
        part += 1
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        svc.buckets.put(out_bucket, f"{out_prefix}{PART_PREFIX}{part:05d}{PART_SUFFIX}", body.encode())
        _count(progress, lines)
        progress.parts = part
        progress.seconds = round(clock() - began, 3)
        fresh = progress.done - progress.resumed
        progress.images_per_second = round(fresh / max(progress.seconds, 1e-9), 2)
        if part == progress.resumed_parts + 1 or clock() - written >= PROGRESS_SECONDS:
            _put_json(svc, out, PROGRESS, progress.as_json())  # the first part's at once, then ~1/s
            written = clock()
        if on_progress is not None:
            on_progress(progress)
    progress.state = "succeeded"
    progress.seconds = round(clock() - began, 3)
    _put_json(svc, out, SUMMARY, progress.as_json())
    _put_json(svc, out, PROGRESS, progress.as_json())
    return progress


def read_progress(svc: Services, out: str) -> dict[str, Any]:
    """The progress object of the run writing to ``out`` (NotFound when none has started there)."""
    bucket, prefix = parse_s3_prefix(out)
    doc: dict[str, Any] = json.loads(svc.buckets.get(bucket, prefix + PROGRESS))
    return doc


__all__ = [
    "CUSTOM_LABELS",
    "DEFAULT_PART_SIZE",
    "IMAGE_SUFFIXES",
    "MAX_PART_SIZE",
    "PROGRESS",
    "SUMMARY",
    "BatchModel",
    "BatchProgress",
    "Chunk",
    "ChunkRunner",
    "Line",
    "answer_each",
    "check_job",
    "check_prefixes",
    "chunked",
    "error_line",
    "read_progress",
    "resolve_model",
    "run_batch",
    "source_keys",
    "written_parts",
]
