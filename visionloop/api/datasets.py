"""Native REST: datasets — upload images, import a folder / manifest / COCO file, list and relabel
entries, list and delete the manifest lines imports rejected, split, and fetch an entry's image."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from visionloop.api.deps import IMAGE_RESPONSES, Offset, RowId, ServicesDep
from visionloop.core import curation, datasets, entries, projects
from visionloop.core.entities import DatasetEntry, EntrySource
from visionloop.core.images import TRAINING_LIMITS, load_image
from visionloop.core.importing import SourceAccess
from visionloop.core.ports import EntryFilter
from visionloop.core.records.rejected_lines import RejectedLine
from visionloop.core.splitting import DEFAULT_SEED, DEFAULT_TEST_FRACTION, split_dataset
from visionloop.errors import ImageTooLarge, InvalidInput

router = APIRouter(tags=["datasets"])
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


def entry_json(e: DatasetEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "content_hash": e.content_hash,
        "source_ref": e.source_ref,
        "format": e.format,
        "width": e.width,
        "height": e.height,
        "size_bytes": e.size_bytes,
        "labels": list(e.labels),
        "boxes": [b.__dict__ for b in e.boxes],
        "source": e.source.value,
        "group": e.group,
        "created_at": e.created_at.isoformat(),
    }


class ImportIn(BaseModel):
    source: str = Field(
        description="s3://bucket/prefix/, s3://bucket/key.manifest, or a folder, manifest or COCO file "
        "inside one of the server's import_roots"
    )
    format: str = Field("folder", pattern="^(folder|manifest|coco)$")
    images_dir: str | None = None
    groups_from_folders: bool = Field(
        False, description="Folders only: <label>/<group>/<file>, each group folder holding similar photos"
    )


class SplitIn(BaseModel):
    test_fraction: float = Field(DEFAULT_TEST_FRACTION, gt=0, lt=1)
    seed: int = DEFAULT_SEED


class LabelsIn(BaseModel):
    labels: list[str]


@router.post("/projects/{project}/datasets/{dataset_type}/images", status_code=201)
async def upload_image(
    project: str,
    dataset_type: str,
    svc: ServicesDep,
    file: Annotated[UploadFile, File(description="A JPEG or PNG image")],
    labels: Annotated[list[str] | None, Form()] = None,
) -> dict[str, Any]:
    data = await file.read(TRAINING_LIMITS.max_bytes + 1)
    if len(data) > TRAINING_LIMITS.max_bytes:
        raise ImageTooLarge(f"the image is larger than {TRAINING_LIMITS.max_bytes:,} bytes")
    name = file.filename or "upload"
    entry = datasets.add_image(
        svc, project, data, name, labels or [], dataset_type=dataset_type, source=EntrySource.UPLOAD
    )
    return entry_json(entry)


@router.post("/projects/{project}/datasets/{dataset_type}/import")
def import_dataset(
    project: str, dataset_type: str, body: ImportIn, svc: ServicesDep, request: Request
) -> dict[str, Any]:
    if body.groups_from_folders and body.format != "folder":
        raise InvalidInput("groups_from_folders applies to folder imports only")
    settings = request.app.state.settings
    access = SourceAccess.over_http(settings.import_roots, settings.max_import_file_mb)
    if body.format == "folder":
        report = datasets.import_folder(
            svc, project, body.source, dataset_type, None, body.groups_from_folders, access
        )
    elif body.format == "manifest":
        report = datasets.import_manifest(svc, project, body.source, dataset_type, access=access)
    else:
        report = datasets.import_coco(svc, project, body.source, dataset_type, body.images_dir, access=access)
    return report.to_dict()


@router.get("/projects/{project}/datasets/{dataset_type}/entries")
def list_entries(
    project: str,
    dataset_type: str,
    svc: ServicesDep,
    label: str | None = None,
    labeled: bool | None = None,
    source: EntrySource | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    p = projects.get_project(svc, project)
    ds = projects.get_dataset(svc, p, projects.parse_dataset_type(dataset_type))
    where = EntryFilter(label=label, labeled=labeled, source=source)
    page = curation.browse(svc, ds, where, offset, limit)
    return {
        "total": page.total,
        "offset": offset,
        "entries": [entry_json(e) for e in page.entries],
        "rejected_lines": entries.rejected_lines(svc, ds, 0, 0)[0],
    }


def rejected_json(r: RejectedLine) -> dict[str, Any]:
    return {
        "id": r.id,
        "source_ref": r.source_ref,
        "line": r.line,
        "errors": [{"code": e.code, "message": e.message} for e in r.errors],
        "created_at": r.created_at.isoformat(),
    }


@router.get("/projects/{project}/datasets/{dataset_type}/rejected-lines")
def list_rejected_lines(
    project: str,
    dataset_type: str,
    svc: ServicesDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The manifest lines the dataset's imports rejected, with their errors (never trained on)."""
    p = projects.get_project(svc, project)
    ds = projects.get_dataset(svc, p, projects.parse_dataset_type(dataset_type))
    total, lines = entries.rejected_lines(svc, ds, offset, limit)
    return {"total": total, "offset": offset, "lines": [rejected_json(r) for r in lines]}


@router.delete("/projects/{project}/datasets/{dataset_type}/rejected-lines/{line_id}", status_code=204)
def delete_rejected_line(project: str, dataset_type: str, line_id: RowId, svc: ServicesDep) -> Response:
    p = projects.get_project(svc, project)
    ds = projects.get_dataset(svc, p, projects.parse_dataset_type(dataset_type))
    entries.delete_rejected_line(svc, ds, line_id)
    return Response(status_code=204)


@router.patch("/projects/{project}/entries/{entry_id}")
def relabel_entry(project: str, entry_id: RowId, body: LabelsIn, svc: ServicesDep) -> dict[str, Any]:
    return entry_json(curation.set_labels(svc, project, entry_id, body.labels))


@router.get(
    "/projects/{project}/entries/{entry_id}/image", response_class=Response, responses=IMAGE_RESPONSES
)
def entry_image(project: str, entry_id: RowId, svc: ServicesDep) -> Response:
    (entry,) = curation.project_entries(svc, projects.get_project(svc, project), [entry_id])
    return Response(load_image(svc.store, entry.content_hash), media_type=CONTENT_TYPES.get(entry.format))


@router.post("/projects/{project}/split")
def split(project: str, body: SplitIn, svc: ServicesDep) -> dict[str, Any]:
    rec = split_dataset(svc, project, body.test_fraction, body.seed)
    return {
        "seed": rec.seed,
        "test_fraction": rec.test_fraction,
        "train": rec.train_count,
        "test": rec.test_count,
        "groups": rec.n_groups,
        "warnings": list(rec.warnings),
    }
