"""Export a dataset back to a Ground Truth manifest that imports again to the same dataset."""

from __future__ import annotations

from visionloop.core.entities import DatasetEntry, DatasetType
from visionloop.core.images import content_hash, load_image
from visionloop.core.keys import check_bucket, check_key, parse_s3_uri
from visionloop.core.manifests import dumps_line, manifest_line
from visionloop.core.projects import get_dataset, get_project
from visionloop.core.services import Services
from visionloop.errors import InvalidKey, ObjectNotFound

EXPORT_BUCKET = "exports"
EXTENSIONS = {"JPEG": "jpg", "PNG": "png"}


def export_manifest(
    svc: Services,
    project_name: str,
    dataset_type: DatasetType = DatasetType.TRAIN,
    bucket: str = EXPORT_BUCKET,
    prefix: str | None = None,
) -> tuple[str, str]:
    """Write the dataset's manifest to ``s3://bucket/prefix/manifest.jsonl`` and return (uri, text).

    Each line's ``source-ref`` is the entry's own s3:// reference when that object still holds the same
    image; otherwise the image is copied to ``prefix/images/<sha256>.<ext>`` so the manifest always
    resolves."""
    project = get_project(svc, project_name)
    dataset = get_dataset(svc, project, dataset_type)
    check_bucket(bucket)
    base = check_key(prefix.strip("/") if prefix else f"{project.name}/{dataset_type.value}")
    svc.buckets.create_bucket(bucket)
    job = f"visionloop/{project.name}/{dataset_type.value}"
    lines = []
    for entry in svc.repo.list_entries(dataset.id):
        ref = _resolvable_ref(svc, entry) or _copy_out(svc, entry, bucket, base)
        lines.append(dumps_line(manifest_line(entry, ref, project.task, job)))
    text = "".join(line + "\n" for line in lines)
    key = f"{base}/manifest.jsonl"
    svc.buckets.put(bucket, key, text.encode("utf-8"))
    return f"s3://{bucket}/{key}", text


def _resolvable_ref(svc: Services, entry: DatasetEntry) -> str | None:
    if not entry.source_ref.startswith("s3://"):
        return None
    try:
        ref = parse_s3_uri(entry.source_ref)
        data = svc.buckets.get(ref.bucket, ref.key)
    except (InvalidKey, ObjectNotFound):
        return None
    return entry.source_ref if content_hash(data) == entry.content_hash else None


def _copy_out(svc: Services, entry: DatasetEntry, bucket: str, base: str) -> str:
    key = f"{base}/images/{entry.content_hash}.{EXTENSIONS.get(entry.format, 'img')}"
    if not svc.buckets.exists(bucket, key):
        svc.buckets.put(bucket, key, load_image(svc.store, entry.content_hash))
    return f"s3://{bucket}/{key}"
