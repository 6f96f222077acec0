"""Use cases that fill datasets: the four import paths and single uploads. A Ground Truth manifest, from
any interface, goes through import_manifest_text: the plain import, CreateDataset's stricter rule and
UpdateDatasetEntries' upsert are ManifestRules of that one function."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from visionloop.core.coco import coco_candidates, doc_candidates, parse_coco
from visionloop.core.entities import (
    Dataset,
    DatasetEntry,
    DatasetType,
    EntrySource,
    ImportIssue,
    ImportReport,
    Project,
    TaskType,
)
from visionloop.core.images import check_image
from visionloop.core.importing import (
    CLI_ACCESS,
    Candidate,
    InvalidBox,
    Progress,
    SourceAccess,
    bucket_folder_candidates,
    folder_candidates,
    manifest_candidates,
    ratio_box,
    run_import,
    too_many_invalid,
    upload_candidate,
)
from visionloop.core.keys import parse_s3_uri
from visionloop.core.labels import Relabel, relabel_entries
from visionloop.core.manifests import ManifestLine, PixelBox, parse_manifest
from visionloop.core.ports import EntryFilter
from visionloop.core.projects import all_entries, ensure_dataset, get_project, parse_dataset_type
from visionloop.core.records.rejected_lines import LineError, NewRejectedLine
from visionloop.core.services import Services
from visionloop.core.uploaded_files import find_uploaded
from visionloop.errors import AlreadyExists, InvalidInput, InvalidManifest, NotFound, ObjectNotFound

MAX_MANIFEST_LINES = 250_000


def import_folder(
    svc: Services,
    project_name: str,
    source: str,
    dataset_type: str | DatasetType = DatasetType.TRAIN,
    progress: Progress | None = None,
    groups_from_folders: bool = False,
    access: SourceAccess = CLI_ACCESS,
) -> ImportReport:
    """Import a folder tree (or ``s3://bucket/prefix/``) whose sub-folder names are the labels. With
    ``groups_from_folders`` the tree is ``<label>/<group>/<file>``: the innermost folder names the group
    of similar photos each image belongs to. Images already in the project are skipped, group or not.
    A folder on the server must be one ``access`` allows."""
    project = get_project(svc, project_name)
    dtype = parse_dataset_type(dataset_type)
    if source.startswith("s3://"):
        items = list(bucket_folder_candidates(svc, source, groups_from_folders))
    else:
        items = list(folder_candidates(source, groups_from_folders, access))
    dataset = ensure_dataset(svc, project, dtype)
    return run_import(svc, project, dataset, items, progress=progress)


def import_manifest(
    svc: Services,
    project_name: str,
    manifest: str,
    dataset_type: str | DatasetType = DatasetType.TRAIN,
    progress: Progress | None = None,
    max_invalid_fraction: float | None = None,
    access: SourceAccess = CLI_ACCESS,
    adopt_task: bool = False,
) -> ImportReport:
    """Import a Ground Truth manifest given as ``s3://bucket/key`` or a local file path (one ``access``
    allows), by import_manifest_text with these ManifestRules."""
    project = get_project(svc, project_name)
    dtype = parse_dataset_type(dataset_type)
    text = _read_manifest_text(svc, manifest, access)
    rules = ManifestRules(max_invalid_fraction=max_invalid_fraction, adopt_task=adopt_task)
    return import_manifest_text(svc, project, dtype, text, rules, progress=progress).added


@dataclass(frozen=True)
class ManifestRules:
    """How an interface takes a Ground Truth manifest: the plain import (native API, CLI, console) reports
    bad lines and keeps the good ones; Rekognition's CreateDataset and UpdateDatasetEntries add rules."""

    max_invalid_fraction: float | None = None
    """Refuse the whole manifest, adding nothing, when more of its lines than this fraction fail, bad
    JSON and images that fail the import checks alike (Custom Labels' rule for CreateDataset)."""
    upsert: bool = False
    """UpdateDatasetEntries: a line naming an entry of the dataset by ``source-ref`` relabels that entry;
    blank lines are skipped and any other bad line refuses the whole manifest (InvalidInput)."""
    adopt_task: bool = False
    """A project without entries or versions first takes the task the lines imply (a project made through
    the AWS API has none of its own)."""


@dataclass
class ManifestReport:
    """What a manifest did: entries relabelled (upserts only) and images imported."""

    updated: int = 0
    added: ImportReport = field(default_factory=ImportReport)


def import_manifest_text(
    svc: Services,
    project: Project,
    dataset_type: DatasetType,
    text: str,
    rules: ManifestRules = ManifestRules(),
    *,
    origin: str = "the manifest",
    progress: Progress | None = None,
) -> ManifestReport:
    """Import (or, with ``rules.upsert``, upsert) the lines of a Ground Truth manifest given as text into
    the project's dataset of ``dataset_type``, created if needed; its images are in the buckets, named by
    s3:// source-refs. ``origin`` names the text in messages. Lines are parsed once; every check that can
    refuse the manifest runs before anything is written."""
    lines = [line for line in text.splitlines() if line.strip() or not rules.upsert]
    if not text.strip() and not rules.upsert:
        raise InvalidManifest(f"{origin} is empty")
    if len(lines) > MAX_MANIFEST_LINES:
        raise InvalidManifest(f"{origin} has {len(lines):,} lines; the limit is {MAX_MANIFEST_LINES:,}")
    parsed = list(parse_manifest(lines))
    good = [p for p in parsed if isinstance(p, ManifestLine)]
    bad = [p for p in parsed if isinstance(p, ImportIssue)]
    if rules.upsert and bad:
        raise InvalidInput(_issues_message(bad, len(parsed)))
    if rules.upsert and not good:
        raise InvalidInput(f"there are no JSON lines in {origin}")
    if rules.adopt_task:
        project = adopt_task(svc, project, infer_task(good))
    fraction = rules.max_invalid_fraction
    if fraction is not None:  # early, before any image is read
        _refuse_many_invalid(ImportReport(failed=len(bad), issues=list(bad)), len(lines), fraction)
    dataset = ensure_dataset(svc, project, dataset_type)
    existing = _entries_by_ref(svc, dataset, {ln.source_ref for ln in good}) if rules.upsert else {}
    # relabel_entries checks every line before writing one; of two lines naming an entry the later wins
    relabels = [_relabel(ln, existing[ln.source_ref]) for ln in good if ln.source_ref in existing]
    relabel_entries(svc, project, relabels)
    if relabels:  # an entry answers the line that last relabelled it
        svc.repo.set_entry_manifest_lines(
            {existing[ln.source_ref].id: ln.text for ln in good if ln.source_ref in existing}
        )
    new = [p for p in parsed if not (isinstance(p, ManifestLine) and p.source_ref in existing)]
    refuse = None if fraction is None else lambda r: _refuse_many_invalid(r, len(lines), fraction)
    failed: list[tuple[Candidate, ImportIssue]] = []
    added = run_import(
        svc,
        project,
        dataset,
        list(manifest_candidates(svc, new)),
        progress=progress,
        before_adding=refuse,
        rejected=failed,
    )
    keep_rejected_lines(svc, dataset, lines, parsed, failed)
    return ManifestReport(len({r.entry.id for r in relabels}), added)


def keep_rejected_lines(
    svc: Services,
    dataset: Dataset,
    lines: Sequence[str],
    parsed: Sequence[ManifestLine | ImportIssue],
    failed: Sequence[tuple[Candidate, ImportIssue]],
) -> None:
    """Keep the lines of a manifest that could not be used, with their errors, as Custom Labels does; each
    source-ref the manifest names loses the rejected lines an earlier import kept for it (a corrected line
    replaces its error line). Blank lines are not kept: there is nothing in them to fix."""
    named = [p.source_ref for p in parsed if isinstance(p, ManifestLine)]
    keep: list[NewRejectedLine] = []
    for text, item in zip(lines, parsed, strict=True):
        if isinstance(item, ImportIssue) and text.strip():
            ref = _source_ref_of(text)
            named += [ref] if ref is not None else []
            keep.append(NewRejectedLine(ref, text.strip(), (LineError(item.code, item.message),)))
    for candidate, issue in failed:
        line = candidate.manifest_line or ""
        keep.append(NewRejectedLine(candidate.source_ref, line, (LineError(issue.code, issue.message),)))
    svc.repo.replace_rejected_lines(dataset.id, named, keep, svc.clock.now())


def _source_ref_of(text: str) -> str | None:
    """The ``source-ref`` of a line that could not be used, when it has a string one."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    ref = obj.get("source-ref") if isinstance(obj, dict) else None
    return ref if isinstance(ref, str) else None


def _refuse_many_invalid(report: ImportReport, lines: int, fraction: float) -> None:
    if too_many_invalid(report, lines, fraction):
        first = next(i for i in report.issues if i.code not in ("DUPLICATE", "MERGED"))
        raise InvalidManifest(
            f"{report.failed} of {lines} manifest lines are invalid (more than {fraction:.0%}); "
            f"first: {first.ref}: {first.code}: {first.message}",
            code="ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
        )


def _issues_message(issues: Sequence[ImportIssue], total: int) -> str:
    shown = "; ".join(f"{i.ref}: {i.code}: {i.message}" for i in issues[:3])
    more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
    return f"{len(issues)} of {total} lines are invalid: {shown}{more}"


def _entries_by_ref(svc: Services, dataset: Dataset, refs: set[str]) -> dict[str, DatasetEntry]:
    if len(refs) == 1:
        (ref,) = refs
        found = svc.repo.list_entries(dataset.id, EntryFilter(source_ref_contains=ref))
        return {e.source_ref: e for e in found if e.source_ref == ref}
    return {e.source_ref: e for e in all_entries(svc, dataset) if e.source_ref in refs}


def _relabel(line: ManifestLine, entry: DatasetEntry) -> Relabel:
    """The labels and boxes ``line`` gives an existing entry, its boxes turned into ratios."""
    where = f"line {line.line_no} ({line.source_ref})"
    try:
        boxes = tuple(ratio_box(b, entry.width, entry.height, i) for i, b in enumerate(line.boxes))
    except InvalidBox as e:
        raise InvalidInput(f"{where}: {e.message}") from None
    return Relabel(entry, line.labels, boxes, where)


def infer_task(lines: Iterable[ManifestLine]) -> TaskType | None:
    """The task most labelled lines imply; None when no line is labelled."""
    detection = classification = 0
    multi = False
    for line in lines:
        if line.kind == "detection":
            detection += 1
        elif line.kind == "classification":
            classification += 1
            multi = multi or len(line.labels) > 1
    if not detection and not classification:
        return None
    if detection > classification:
        return TaskType.DETECTION
    return TaskType.MULTI_LABEL if multi else TaskType.CLASSIFICATION


def adopt_task(svc: Services, project: Project, task: TaskType | None) -> Project:
    """Give a project without entries or model versions the task ``task``; otherwise keep its own."""
    if task is None or task is project.task or not is_blank(svc, project):
        return project
    return svc.repo.set_project_task(project.id, task)


def is_blank(svc: Services, project: Project) -> bool:
    """Whether the project has neither entries nor model versions (its task may still change)."""
    datasets = svc.repo.list_datasets(project.id)
    return not any(svc.repo.count_entries(d.id) for d in datasets) and not svc.repo.list_versions(project.id)


def _read_manifest_text(svc: Services, manifest: str, access: SourceAccess = CLI_ACCESS) -> str:
    """The manifest's text, from a bucket or a file ``access`` allows, at most ``access.max_file_bytes``."""
    if manifest.startswith("s3://"):
        ref = parse_s3_uri(manifest)
        try:
            data = svc.buckets.get(ref.bucket, ref.key, max_bytes=access.max_file_bytes)
        except ObjectNotFound:
            raise NotFound(f"manifest {manifest} does not exist") from None
        if len(data) > access.max_file_bytes:
            raise InvalidManifest(
                f"manifest {manifest} is larger than the limit of {access.max_file_bytes:,} bytes"
            )
    else:
        data = access.read_file(manifest, "manifest file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidManifest("the manifest is not UTF-8 text") from None
    return text


def import_coco(
    svc: Services,
    project_name: str,
    path: str,
    dataset_type: str | DatasetType = DatasetType.TRAIN,
    images_dir: str | None = None,
    progress: Progress | None = None,
    access: SourceAccess = CLI_ACCESS,
) -> ImportReport:
    """Import a COCO detection file into an object-detection project; the file and its images must be
    ones ``access`` allows."""
    project = get_project(svc, project_name)
    dtype = parse_dataset_type(dataset_type)
    items = list(coco_candidates(path, images_dir, access))
    dataset = ensure_dataset(svc, project, dtype)
    return run_import(svc, project, dataset, items, progress=progress)


def import_coco_upload(
    svc: Services,
    project_name: str,
    dataset_type: DatasetType,
    coco: bytes,
    images: Mapping[str, Callable[[], bytes]],
) -> ImportReport:
    """Import a COCO file sent with its images (an upload: ``images`` maps each file's name, a path inside
    the chosen folder, to a reader of its bytes). A COCO ``file_name`` finds its image by the same path,
    by a path ending in it, or by its base name when only one file has it; an image that was not sent is
    reported, not raised."""
    project = get_project(svc, project_name)
    doc = parse_coco(coco)

    def loader_for(file_name: str) -> Callable[[], bytes]:
        name, why = find_uploaded(file_name, images.keys())
        if name is not None:
            return images[name]

        def missing() -> bytes:
            raise NotFound(f"no image for {file_name!r}: {why}")

        return missing

    items = list(doc_candidates(doc, loader_for))
    dataset = ensure_dataset(svc, project, dataset_type)
    return run_import(svc, project, dataset, items)


def add_image(
    svc: Services,
    project_name: str,
    data: bytes,
    name: str,
    labels: Sequence[str] = (),
    boxes: Sequence[PixelBox] = (),
    dataset_type: str | DatasetType = DatasetType.TRAIN,
    source: EntrySource = EntrySource.UPLOAD,
) -> DatasetEntry:
    """Add one uploaded image with its labels (or pixel boxes); errors are raised, not reported."""
    project = get_project(svc, project_name)
    dataset = ensure_dataset(svc, project, parse_dataset_type(dataset_type))
    check_image(data, svc.inspector)  # raises the precise error (too large, not an image, …)
    report = run_import(svc, project, dataset, [upload_candidate(data, name, labels, boxes)], source=source)
    if report.failed or report.skipped:
        issue = report.issues[0]
        if issue.code.startswith("DUPLICATE"):
            raise AlreadyExists(issue.message, code=issue.code)
        raise InvalidInput(issue.message, code=issue.code)
    return svc.repo.get_entry(report.entry_ids[0])
