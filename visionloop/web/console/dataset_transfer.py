"""A dataset out of and into the console as files, as the Rekognition console exports and imports them:

    GET  /console/projects/{p}/datasets/{train|test}/export   the dataset's Ground Truth manifest as a
                                                             download (core.exporting: each line names
                                                             its image in this server's buckets, so the
                                                             file imports again to the same images)
    POST /console/projects/{p}/datasets/{train|test}/coco     a COCO file with its images (or the folder
                                                             holding both), for detection projects;
                                                             the COCO file capped by max_import_file_mb

The manifest's own upload is web.console.datasets' (its manifest form)."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from visionloop.core import datasets, projects
from visionloop.core.exporting import export_manifest
from visionloop.errors import InvalidInput
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import console_router
from visionloop.web.console.datasets import clean_name, dataset_type, report_page, upload_reader
from visionloop.web.routing import web

router = console_router()


@router.get("/projects/{name}/datasets/{kind}/export")
def export(request: Request, name: str, kind: str, session: Operator) -> Response:
    svc = web(request).services
    project = projects.get_project(svc, name)
    _, text = export_manifest(svc, project.name, dataset_type(kind))
    filename = f"{project.name}-{kind}.manifest"
    return Response(
        text.encode("utf-8"),
        media_type="application/jsonlines",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.post("/projects/{name}/datasets/{kind}/coco")
async def import_coco(
    request: Request,
    name: str,
    kind: str,
    session: OperatorForm,
    coco: Annotated[UploadFile | None, File()] = None,
    images: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    svc = web(request).services
    dtype = dataset_type(kind)
    project = await run_in_threadpool(projects.get_project, svc, name)
    files = [f for f in images if f.filename]
    if coco is None or not coco.filename:  # a folder may hold the COCO file among its images
        found = [f for f in files if (f.filename or "").lower().endswith(".json")]
        if len(found) != 1:
            raise InvalidInput(
                "choose the COCO file (a .json file) with its images, or the folder holding both"
            )
        coco = found[0]
    limit = int(request.app.state.settings.max_import_file_mb * 1024 * 1024)
    raw = await coco.read(limit + 1)
    if len(raw) > limit:
        raise InvalidInput(f"the COCO file is larger than the limit of {limit:,} bytes (max_import_file_mb)")
    readers = {clean_name(f.filename or ""): upload_reader(f) for f in files if f is not coco}
    report = await run_in_threadpool(datasets.import_coco_upload, svc, project.name, dtype, raw, readers)
    return report_page(request, session, project, dtype, report, "COCO import")
