"""Use cases that fill datasets: the four import paths and single uploads."""

from __future__ import annotations

from collections.abc import Sequence

from visionloop.core.coco import coco_candidates
from visionloop.core.entities import DatasetEntry, DatasetType, EntrySource, ImportIssue, ImportReport
from visionloop.core.images import check_image
from visionloop.core.importing import (
    CLI_ACCESS,
    Progress,
    SourceAccess,
    bucket_folder_candidates,
    folder_candidates,
    manifest_candidates,
    run_import,
    too_many_invalid,
    upload_candidate,
)
from visionloop.core.keys import parse_s3_uri
from visionloop.core.manifests import PixelBox, parse_manifest
from visionloop.core.projects import ensure_dataset, get_project, parse_dataset_type
from visionloop.core.services import Services
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
) -> ImportReport:
    """Import a Ground Truth manifest given as ``s3://bucket/key`` or a local file path (one ``access``
    allows). With ``max_invalid_fraction`` the whole import is refused, adding nothing, when too many lines
    are bad."""
    project = get_project(svc, project_name)
    dtype = parse_dataset_type(dataset_type)
    lines = read_manifest_text(svc, manifest, access).splitlines()
    dataset = ensure_dataset(svc, project, dtype)
    if len(lines) > MAX_MANIFEST_LINES:
        raise InvalidManifest(f"the manifest has {len(lines):,} lines; the limit is {MAX_MANIFEST_LINES:,}")
    parsed = list(parse_manifest(lines))
    if max_invalid_fraction is not None:
        bad = sum(isinstance(p, ImportIssue) for p in parsed)
        probe = ImportReport(failed=bad)
        if too_many_invalid(probe, len(lines), max_invalid_fraction):
            raise InvalidManifest(
                f"{bad} of {len(lines)} manifest lines are invalid (more than {max_invalid_fraction:.0%})",
                code="ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
            )
    return run_import(svc, project, dataset, list(manifest_candidates(svc, parsed)), progress=progress)


def read_manifest_text(svc: Services, manifest: str, access: SourceAccess = CLI_ACCESS) -> str:
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
    if not text.strip():
        raise InvalidManifest("the manifest is empty")
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
