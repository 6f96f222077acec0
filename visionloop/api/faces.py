"""Native REST: faces in images, ``POST /api/v1/faces/detect`` and ``POST /api/v1/faces/compare``.

``detect`` takes its image as the analysers do (a multipart ``file``, the raw body with the options in the
query string, or JSON with ``image_base64`` or ``s3_object``). ``compare`` takes two images: a multipart
form with the files ``source`` and ``target`` (options in the query string), or JSON whose ``source`` and
``target`` are each ``{image_base64}`` or ``{s3_object: {bucket, name}}``. The analyser runs on the
server's analysis threads; the handler awaits its future."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from visionloop.api import images
from visionloop.api.analyze import AnalysisDep, ImageIn, read_request, record_json
from visionloop.api.deps import ServicesDep
from visionloop.core import analyzing, faces
from visionloop.core.keys import ObjectRef
from visionloop.errors import ImageTooLarge, InvalidInput

router = APIRouter(prefix="/faces", tags=["faces"])
MAX_BYTES = analyzing.ANALYSIS_LIMITS.max_bytes


class DetectIn(ImageIn):
    attributes: list[str] | None = Field(
        default=None, description="DEFAULT (the default), ALL, or Rekognition's attribute names"
    )


class CompareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: ImageIn
    target: ImageIn
    similarity_threshold: float | None = Field(default=None, description="0-100 (default 80)")
    quality_filter: str | None = Field(default=None, description="NONE (default), AUTO, LOW, MEDIUM, HIGH")


@router.post("/detect", openapi_extra=images.image_request_body(DetectIn))
async def detect(
    request: Request,
    svc: ServicesDep,
    analysis: AnalysisDep,
    attributes: Annotated[list[str] | None, Query(description="DEFAULT, ALL, EYES_OPEN, …")] = None,
) -> dict[str, Any]:
    """DetectFaces: the 100 largest faces with box, confidence, landmarks, pose and quality; the
    estimated attributes on request."""
    image, body = await read_request(request, DetectIn)
    if isinstance(body, DetectIn) and body.attributes is not None:
        attributes = body.attributes
    names = tuple(attributes or ("DEFAULT",))
    future = analysis.submit(faces.detect_faces, svc, analysis.source, image, names)
    return faces_json(await asyncio.wrap_future(future))


@router.post("/compare", openapi_extra=images.image_request_body(CompareIn, ("source", "target"), raw=False))
async def compare(
    request: Request,
    svc: ServicesDep,
    analysis: AnalysisDep,
    similarity_threshold: Annotated[float | None, Query(description="0-100 (default 80)")] = None,
    quality_filter: Annotated[str | None, Query(description="NONE, AUTO, LOW, MEDIUM, HIGH")] = None,
) -> dict[str, Any]:
    """CompareFaces: the source image's largest face against each face of the target image."""
    source, target, body = await _two_images(request)
    if body is not None and body.similarity_threshold is not None:
        similarity_threshold = body.similarity_threshold
    if body is not None and body.quality_filter is not None:
        quality_filter = body.quality_filter
    options = faces.CompareOptions(
        faces.DEFAULT_SIMILARITY_THRESHOLD if similarity_threshold is None else similarity_threshold,
        quality_filter or "NONE",
    )
    future = analysis.submit(faces.compare_faces, svc, analysis.source, source, target, options)
    return compare_json(await asyncio.wrap_future(future))


async def _two_images(
    request: Request,
) -> tuple[analyzing.ImageSource, analyzing.ImageSource, CompareIn | None]:
    """The source and target images of a multipart form (files ``source`` and ``target``) or a JSON body."""
    limit = images.max_body(2 * MAX_BYTES)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ImageTooLarge(f"the request is {int(declared):,} bytes; an image may be {MAX_BYTES:,} at most")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async with request.form(max_files=2) as form:
            files = [form.get(name) for name in ("source", "target")]
            if not all(isinstance(f, UploadFile) for f in files):
                raise InvalidInput("the form needs two files: 'source' and 'target'")
            data = [await f.read(MAX_BYTES + 1) for f in files if isinstance(f, UploadFile)]
            return data[0], data[1], None
    if kind != "application/json":
        raise InvalidInput("send the two images as a multipart form (source, target) or as JSON")
    try:
        body = CompareIn.model_validate_json(await images.read_limited(request, limit))
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    return images.json_image(body.source, ObjectRef), images.json_image(body.target, ObjectRef), body


# --- records to JSON (the CLI's --json prints the same) -------------------------------------------------


def faces_json(result: faces.FacesResult) -> dict[str, Any]:
    return {"faces": [record_json(f) for f in result.faces], "model_version": result.version}


def compare_json(r: faces.CompareResult) -> dict[str, Any]:
    return {
        "source_face": record_json(r.source_face),
        "face_matches": [{"similarity": m.similarity, "face": record_json(m.face)} for m in r.matches],
        "unmatched_faces": [record_json(f) for f in r.unmatched],
        "model_version": r.version,
    }
