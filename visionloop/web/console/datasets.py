"""The dataset browser (over core.curation):

    GET  /console/projects/{p}/datasets/{train|test}          thumbnails, 48 a page, filtered by label,
                                                             labelled/unlabelled and source; counts per
                                                             label; the upload and manifest panels
    POST /console/projects/{p}/datasets/{d}/entries           a change to the ticked images: set, add or
                                                             remove a label, clear, or remove the images
    POST /console/projects/{p}/datasets/{d}/upload            images (files or a folder); labels from each
                                                             file's folder, one chosen label, or none.
                                                             Answers JSON to the page's script (which sends
                                                             a few files at a time, for progress), a report
                                                             page to a plain form
    POST /console/projects/{p}/datasets/{d}/manifest          a Ground Truth manifest (a file, or where it
                                                             is: s3://bucket/key or a path on the server)
    POST /console/projects/{p}/datasets/{d}/rejected/{id}/delete  forget a manifest line an import rejected
                                                             (the page lists them with their errors)
    GET  /console/projects/{p}/entries/{id}                   one image: its labels, or its boxes to draw
    GET  /console/projects/{p}/entries/{id}/image|thumb       the image, or a small JPEG of it
    POST /console/projects/{p}/entries/{id}/labels|boxes|remove

Each POST returns to the page it came from (``back``, kept inside this project's pages)."""

from __future__ import annotations

import io
import json
import math
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import File, Form, Request, UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from visionloop.api.deps import RowId
from visionloop.core import curation, datasets, entries, projects
from visionloop.core.curation import LabelAction, Upload
from visionloop.core.entities import (
    Box,
    Dataset,
    DatasetEntry,
    DatasetType,
    EntrySource,
    ImportIssue,
    ImportReport,
    Project,
    TaskType,
)
from visionloop.core.images import TRAINING_LIMITS, load_image
from visionloop.core.importing import SourceAccess
from visionloop.core.labels import MAX_BOXES, project_labels
from visionloop.core.ports import EntryFilter
from visionloop.core.services import Services
from visionloop.core.uploaded_files import Reader, place_manifest_images
from visionloop.errors import ImageTooLarge, InvalidInput, NotFound
from visionloop.web.auth import Operator, OperatorForm
from visionloop.web.console import Link, console_router
from visionloop.web.console.projects import project_url
from visionloop.web.pages import render
from visionloop.web.routing import wants_page, web

router = console_router()
PROJECT_TABS = (
    Link(
        "Dataset",
        "/console/projects/{project}/datasets/train",
        10,
        ("/console/projects/{project}/datasets/", "/console/projects/{project}/entries/"),
    ),
)

PAGE_SIZE = 48
REJECTED_SHOWN = 50  # rejected manifest lines listed on the dataset's page (the count is of all)
UPLOAD_CHUNK = 16  # files read and imported at a time
THUMB_SIDE = 240
SOURCES = {s.value: s.value.replace("_", " ") for s in EntrySource}
STATES = {"labelled": True, "unlabelled": False}
NOTICES = {
    "created": "The project is ready: add images to its training dataset.",
    "removed": "{n} image{s} removed.",
    "changed": "{n} image{s} changed.",
    "unchanged": "Nothing needed changing.",
    "saved": "Saved.",
    "forgotten": "The rejected line was deleted.",
    "last": "Saved: that was the last of these images.",
    "renamed": "The label was renamed on {n} image{s}.",
    "merged": "The labels were merged: {n} image{s} relabelled.",
}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
IMAGE_HEADERS = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class Filters:
    label: str = ""
    state: str = ""  # "", labelled, unlabelled
    source: str = ""  # "", or an EntrySource value

    def where(self) -> EntryFilter:
        return EntryFilter(
            label=self.label or None,
            labeled=STATES.get(self.state),
            source=EntrySource(self.source) if self.source in SOURCES else None,
        )

    def query(self, **more: object) -> str:
        pairs = {"label": self.label, "state": self.state, "source": self.source, **more}
        kept = {k: v for k, v in pairs.items() if v not in ("", None, 1)}
        return f"?{urlencode(kept)}" if kept else ""


@dataclass(frozen=True)
class Walk:
    """Where an image's page was opened from: the browser's filters, the image's place among the images
    they show, and the page to go back to; "Save and next" and "Next image" go on through the same images."""

    filters: Filters = Filters()
    at: int = 0
    back: str = ""

    def query(self, at: int | None = None, **more: str) -> str:
        f = self.filters
        pairs = {"f_label": f.label, "f_state": f.state, "f_source": f.source, "back": self.back, **more}
        kept = {k: v for k, v in pairs.items() if v}
        kept["at"] = str(self.at if at is None else at)
        return f"?{urlencode(kept)}"


def _walk(label: str, state: str, source: str, at: int, back: str) -> Walk:
    filters = Filters(label, state if state in STATES else "", source if source in SOURCES else "")
    return Walk(filters, max(0, at), back)


def _next_entry(svc: Services, dataset: Dataset, walk: Walk, after: int) -> tuple[DatasetEntry, int] | None:
    """The first image after entry ``after`` among those the walk's filters show, with its place. Looks
    from just before the walk's place on (labelling an image may take it out of the filter)."""
    return curation.next_entry(svc, dataset, walk.filters.where(), walk.at - 1, after)


def _dataset_type(kind: str) -> DatasetType:
    try:
        return DatasetType(kind)
    except ValueError:
        raise NotFound(f"there is no {kind!r} dataset: choose train or test") from None


def _back(project: Project, back: str, kind: str = "train") -> str:
    """``back`` when it is one of this project's console pages, else the dataset's page."""
    base = project_url(project.name)
    if back.startswith(base + "/") and "\\" not in back and "//" not in back:
        return back
    return project_url(project.name, f"/datasets/{kind}")


def _with_notice(url: str, notice: str, n: int | None = None) -> str:
    query = {"notice": notice, **({"n": str(n)} if n is not None else {})}
    base, _, old = url.partition("?")
    kept = [p for p in old.split("&") if p and not p.startswith(("notice=", "n="))]
    return f"{base}?{'&'.join([*kept, urlencode(query)])}"


def _notice(notice: str, n: int | None) -> str:
    text = NOTICES.get(notice, "")
    return text.format(n=n or 0, s="" if n == 1 else "s") if text else ""


# --- the browser ---------------------------------------------------------------------------------------


@router.get("/projects/{name}/datasets/{kind}")
def browse(
    request: Request,
    name: str,
    kind: str,
    session: Operator,
    label: str = "",
    state: str = "",
    source: str = "",
    page: int = 1,
    notice: str = "",
    n: int | None = None,
) -> Response:
    svc = web(request).services
    project = projects.get_project(svc, name)
    dtype = _dataset_type(kind)
    filters = Filters(label, state if state in STATES else "", source if source in SOURCES else "")
    dataset = projects.find_dataset(svc, project, dtype)
    view = _browse_view(svc, project, dataset, filters, max(1, page))
    here = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "console/dataset.html",
        session=session,
        title=f"{project.name}: {dtype.value} images",
        project=project,
        kind=dtype.value,
        filters=filters,
        offset=(max(1, page) - 1) * PAGE_SIZE,
        notice=_notice(notice, n),
        here=here,
        walk=Walk(filters, 0, here),
        sources=SOURCES,
        max_mb=TRAINING_LIMITS.max_bytes // (1024 * 1024),
        **view,
    )


def _browse_view(
    svc: Services, project: Project, dataset: Dataset | None, filters: Filters, page: int
) -> dict[str, Any]:
    overview = curation.dataset_overview(svc, project, dataset)
    view = {"counts": overview.counts, "stats": overview.stats, "labels": overview.labels}
    if dataset is None:
        return {"entries": [], "total": 0, "page": 1, "pages": 1, "rejected": [], "n_rejected": 0, **view}
    found = curation.browse(svc, dataset, filters.where(), (page - 1) * PAGE_SIZE, PAGE_SIZE)
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    n_rejected, rejected = entries.rejected_lines(svc, dataset, 0, REJECTED_SHOWN)
    return {
        "entries": found.entries,
        "total": found.total,
        "page": page,
        "pages": pages,
        "rejected": rejected,
        "n_rejected": n_rejected,
        **view,
    }


@router.post("/projects/{name}/datasets/{kind}/rejected/{line_id}/delete")
def delete_rejected_line(
    request: Request, name: str, kind: str, line_id: RowId, session: OperatorForm, back: str = Form("")
) -> Response:
    """Forget a manifest line an import rejected (fixing it is importing a corrected line)."""
    svc = web(request).services
    project = projects.get_project(svc, name)
    dataset = projects.get_dataset(svc, project, _dataset_type(kind))
    entries.delete_rejected_line(svc, dataset, line_id)
    return RedirectResponse(_with_notice(_back(project, back, kind), "forgotten", 1), status_code=303)


@router.post("/projects/{name}/datasets/{kind}/entries")
def change_entries(
    request: Request,
    name: str,
    kind: str,
    session: OperatorForm,
    entry: Annotated[list[int], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    action: str = Form(""),
    label: str = Form(""),
    back: str = Form(""),
) -> Response:
    svc = web(request).services
    project = projects.get_project(svc, name)
    _dataset_type(kind)
    target = _back(project, back, kind)
    if not entry:
        raise InvalidInput("tick one or more images first")
    if action == "remove":
        n = curation.remove_entries(svc, project.name, entry)
        return RedirectResponse(_with_notice(target, "removed", n), status_code=303)
    try:
        chosen = LabelAction(action)
    except ValueError:
        raise InvalidInput("choose what to do with the ticked images") from None
    n = curation.relabel(svc, project.name, entry, chosen, label)
    return RedirectResponse(_with_notice(target, "changed" if n else "unchanged", n), status_code=303)


# --- uploads and imports -------------------------------------------------------------------------------


def _clean_name(raw: str) -> str:
    """A file's name as sent (for folders, its path inside the folder), without tricks: forward slashes,
    no leading slash, no '.' or '..' parts."""
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)[-500:] or "upload"


def folder_label(name: str) -> str:
    """The name of the folder a file sits in ('' for a file on its own)."""
    parent = posixpath.dirname(name)
    return posixpath.basename(parent)


async def _read_upload(f: UploadFile, labels_from: str, label: str) -> Upload:
    name = _clean_name(f.filename or "upload")
    data = await f.read(TRAINING_LIMITS.max_bytes + 1)
    if len(data) > TRAINING_LIMITS.max_bytes:
        issue = ImportIssue(
            name, "ERROR_IMAGE_SIZE_TOO_LARGE", f"the file is larger than {TRAINING_LIMITS.max_bytes:,} bytes"
        )
        return Upload(name, b"", issue=issue)
    if labels_from == "folder":
        labels: tuple[str, ...] = (folder_label(name),) if folder_label(name) else ()
    elif labels_from == "chosen":
        labels = (label,)
    else:
        labels = ()
    return Upload(name, data, labels)


@router.post("/projects/{name}/datasets/{kind}/upload")
async def upload(
    request: Request,
    name: str,
    kind: str,
    session: OperatorForm,
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006
    labels_from: str = Form("folder"),
    label: str = Form(""),
) -> Response:
    from starlette.concurrency import run_in_threadpool

    svc = web(request).services
    dtype = _dataset_type(kind)
    project = await run_in_threadpool(projects.get_project, svc, name)
    files = [f for f in files if f.filename]  # an empty file input sends one nameless part
    if not files:
        raise InvalidInput("choose one or more JPEG or PNG images (or a folder of them) to upload")
    if labels_from == "chosen" and not label.strip():
        raise InvalidInput("type the label to give the images, or label them by their folder's name")
    report = ImportReport()
    for start in range(
        0, len(files), UPLOAD_CHUNK
    ):  # a plain form may carry a whole folder: not all in memory
        uploads = [await _read_upload(f, labels_from, label) for f in files[start : start + UPLOAD_CHUNK]]
        part = await run_in_threadpool(curation.upload_images, svc, project.name, dtype, uploads)
        _merge(report, part)
    if not wants_page(request):
        return JSONResponse(report_json(report))
    return _report_page(request, session, project, dtype, report, "Upload")


def _merge(report: ImportReport, part: ImportReport) -> None:
    report.imported += part.imported
    report.skipped += part.skipped
    report.failed += part.failed
    report.issues += part.issues
    report.labels |= part.labels
    report.entry_ids += part.entry_ids


def report_json(report: ImportReport) -> dict[str, Any]:
    data = report.to_dict()
    data["issues"] = [{**i.to_dict(), "text": issue_text(i)} for i in report.issues]
    return data


def issue_text(issue: ImportIssue) -> str:
    """An import issue in words a person can act on."""
    if issue.code.startswith("DUPLICATE"):
        return f"already in the project, skipped ({issue.message})"
    return issue.message


def _report_page(
    request: Request,
    session: object,
    project: Project,
    dtype: DatasetType,
    report: ImportReport,
    what: str,
) -> Response:
    nothing = report.imported == 0 and report.failed > 0
    return render(
        request,
        "console/import_report.html",
        status=400 if nothing else 200,
        session=session,
        title=f"{what}: {project.name}",
        project=project,
        kind=dtype.value,
        what=what,
        report=report,
        issues=[(i, issue_text(i)) for i in report.issues],
    )


@router.post("/projects/{name}/datasets/{kind}/manifest")
async def import_manifest(
    request: Request,
    name: str,
    kind: str,
    session: OperatorForm,
    manifest: Annotated[UploadFile | None, File()] = None,
    location: str = Form(""),
    images: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    from starlette.concurrency import run_in_threadpool

    svc = web(request).services
    dtype = _dataset_type(kind)
    project = await run_in_threadpool(projects.get_project, svc, name)
    settings = request.app.state.settings
    access = SourceAccess.over_http(settings.import_roots, settings.max_import_file_mb)
    sent = [f for f in images if f.filename]
    if sent and (manifest is None or not manifest.filename):
        raise InvalidInput("choose the manifest file the images go with")
    placed: list[ImportIssue] = []
    if manifest is not None and manifest.filename:
        raw = await manifest.read(access.max_file_bytes + 1)
        if len(raw) > access.max_file_bytes:
            raise InvalidInput(f"the manifest is larger than the limit of {access.max_file_bytes:,} bytes")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(
                "the manifest is not UTF-8 text (a .manifest file has one JSON object a line)"
            ) from None
        readers = {_clean_name(f.filename or ""): upload_reader(f) for f in sent}
        placed = await run_in_threadpool(place_manifest_images, svc, text, readers)
        done = await run_in_threadpool(datasets.import_manifest_text, svc, project, dtype, text)
        report = done.added
        report.issues += placed
    elif location.strip():
        report = await run_in_threadpool(
            datasets.import_manifest, svc, project.name, location.strip(), dtype, access=access
        )
    else:
        raise InvalidInput(
            "choose a manifest file, or say where it is (s3://bucket/key, or a path inside the server's "
            "import_roots)"
        )
    return _report_page(request, session, project, dtype, report, "Manifest import")


def upload_reader(f: UploadFile) -> Reader:
    """Reads an uploaded image from where the upload was spooled, within the training byte limit."""

    def read() -> bytes:
        f.file.seek(0)
        data = f.file.read(TRAINING_LIMITS.max_bytes + 1)
        if len(data) > TRAINING_LIMITS.max_bytes:
            raise ImageTooLarge(
                f"the file is larger than {TRAINING_LIMITS.max_bytes:,} bytes",
                code="ERROR_IMAGE_SIZE_TOO_LARGE",
            )
        return data

    return read


# what the other dataset pages (web.console.label_renames, dataset_transfer) share with this one
back_to = _back
with_notice = _with_notice
clean_name = _clean_name
dataset_type = _dataset_type
report_page = _report_page


# --- one image -----------------------------------------------------------------------------------------


def _entry(svc: Services, name: str, entry_id: int) -> tuple[Project, DatasetEntry, Dataset]:
    project = projects.get_project(svc, name)
    entry, dataset = curation.open_entry(svc, project, entry_id)
    return project, entry, dataset


@router.get("/projects/{name}/entries/{entry_id}")
def entry_page(
    request: Request,
    name: str,
    entry_id: RowId,
    session: Operator,
    back: str = "",
    notice: str = "",
    f_label: str = "",
    f_state: str = "",
    f_source: str = "",
    at: int = 0,
) -> Response:
    svc = web(request).services
    project, entry, dataset = _entry(svc, name, entry_id)
    walk = _walk(f_label, f_state, f_source, at, _back(project, back, dataset.type.value))
    following = _next_entry(svc, dataset, walk, entry.id)
    next_url = (
        project_url(project.name, f"/entries/{following[0].id}{walk.query(following[1])}")
        if following
        else ""
    )
    labels = sorted(set(project_labels(svc, project)) | set(entry.all_labels))
    data = {
        "boxes": [b.__dict__ for b in entry.boxes],
        "width": entry.width,
        "height": entry.height,
        "labels": labels,
    }
    return render(
        request,
        "console/entry.html",
        session=session,
        title=f"{project.name}: {entry.source_ref}",
        project=project,
        entry=entry,
        kind=dataset.type.value,
        labels=labels,
        back=walk.back,
        walk=walk,
        next_url=next_url,
        notice=_notice(notice, None),
        data=data,
        detection=project.task is TaskType.DETECTION,
        single=project.task is TaskType.CLASSIFICATION,
    )


@router.get("/projects/{name}/entries/{entry_id}/image")
def entry_image(request: Request, name: str, entry_id: RowId, session: Operator) -> Response:
    svc = web(request).services
    _, entry, _ = _entry(svc, name, entry_id)
    data = load_image(svc.store, entry.content_hash)
    return Response(data, media_type=CONTENT_TYPES.get(entry.format, "image/jpeg"), headers=IMAGE_HEADERS)


@router.get("/projects/{name}/entries/{entry_id}/thumb")
def entry_thumb(request: Request, name: str, entry_id: RowId, session: Operator) -> Response:
    svc = web(request).services
    _, entry, _ = _entry(svc, name, entry_id)
    small = _thumbnail(entry.content_hash, lambda: load_image(svc.store, entry.content_hash))
    return Response(small, media_type="image/jpeg", headers=IMAGE_HEADERS)


_thumb_cache: dict[str, bytes] = {}  # by content hash, the oldest dropped first
_thumb_lock = threading.Lock()
THUMBS_KEPT = 2048  # about 20 MB


def _thumbnail(digest: str, load: Callable[[], bytes]) -> bytes:
    with _thumb_lock:
        cached = _thumb_cache.get(digest)
    if cached is None:
        cached = make_thumbnail(load())
        with _thumb_lock:
            while len(_thumb_cache) >= THUMBS_KEPT:
                _thumb_cache.pop(next(iter(_thumb_cache)))
            _thumb_cache[digest] = cached
    return cached


@lru_cache(maxsize=1)
def _pil() -> Any:
    from PIL import Image, ImageOps

    return Image, ImageOps


def make_thumbnail(data: bytes, side: int = THUMB_SIDE) -> bytes:
    """A JPEG at most ``side`` pixels on its longer side, turned upright by its EXIF orientation."""
    image_mod, ops = _pil()
    with image_mod.open(io.BytesIO(data)) as img:
        small = ops.exif_transpose(img).convert("RGB")
        small.thumbnail((side, side))
        out = io.BytesIO()
        small.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()


@router.post("/projects/{name}/entries/{entry_id}/labels")
def save_labels(
    request: Request,
    name: str,
    entry_id: RowId,
    session: OperatorForm,
    label: Annotated[list[str], Form()] = [],  # noqa: B006
    new_label: str = Form(""),
    back: str = Form(""),
    f_label: str = Form(""),
    f_state: str = Form(""),
    f_source: str = Form(""),
    at: int = Form(0),
    then: str = Form(""),
) -> Response:
    svc = web(request).services
    project, entry, dataset = _entry(svc, name, entry_id)
    chosen = [x for x in label if x]  # "" is "no label"
    if new_label.strip():
        chosen = [new_label] if project.task is TaskType.CLASSIFICATION else [*chosen, new_label]
    curation.set_labels(svc, project.name, entry.id, chosen)
    walk = _walk(f_label, f_state, f_source, at, _back(project, back, dataset.type.value))
    return RedirectResponse(_after_save(svc, project, dataset, entry, walk, then), status_code=303)


@router.post("/projects/{name}/entries/{entry_id}/boxes")
def save_boxes(
    request: Request,
    name: str,
    entry_id: RowId,
    session: OperatorForm,
    boxes: str = Form(""),
    back: str = Form(""),
    f_label: str = Form(""),
    f_state: str = Form(""),
    f_source: str = Form(""),
    at: int = Form(0),
    then: str = Form(""),
) -> Response:
    svc = web(request).services
    project, entry, dataset = _entry(svc, name, entry_id)
    curation.set_boxes(svc, project.name, entry.id, parse_boxes(boxes))
    walk = _walk(f_label, f_state, f_source, at, _back(project, back, dataset.type.value))
    return RedirectResponse(_after_save(svc, project, dataset, entry, walk, then), status_code=303)


@router.post("/projects/{name}/entries/{entry_id}/remove")
def remove_entry(
    request: Request, name: str, entry_id: RowId, session: OperatorForm, back: str = Form("")
) -> Response:
    svc = web(request).services
    project, entry, dataset = _entry(svc, name, entry_id)
    curation.remove_entries(svc, project.name, [entry.id])
    return RedirectResponse(
        _with_notice(_back(project, back, dataset.type.value), "removed", 1), status_code=303
    )


def _after_save(
    svc: Services, project: Project, dataset: Dataset, entry: DatasetEntry, walk: Walk, then: str
) -> str:
    """The same image again ("Save"), or the next one the walk shows ("Save and next"; the browser page
    when there is none)."""
    if then != "next":
        return project_url(project.name, f"/entries/{entry.id}{walk.query(notice='saved')}")
    following = _next_entry(svc, dataset, walk, entry.id)
    if following is None:
        return _with_notice(walk.back, "last")
    nxt, at = following
    return project_url(project.name, f"/entries/{nxt.id}{walk.query(at, notice='saved')}")


def parse_boxes(text: str) -> list[Box]:
    """The boxes field: a JSON list of {label, left, top, width, height} in ratios of the image size."""
    if not text.strip():
        return []
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidInput("the boxes are not valid JSON") from None
    if not isinstance(raw, list) or len(raw) > MAX_BOXES:
        raise InvalidInput(f"the boxes must be a list of at most {MAX_BOXES}")
    out = []
    for b in raw:
        if not isinstance(b, dict) or not isinstance(b.get("label"), str):
            raise InvalidInput("each box needs a label and left, top, width, height")
        values = [b.get(k) for k in ("left", "top", "width", "height")]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise InvalidInput("box coordinates must be numbers")
        out.append(Box(b["label"], *(float(v) for v in values)))  # type: ignore[arg-type]
    return out
