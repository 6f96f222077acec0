"""Native REST: the pretrained analysers, ``POST /api/v1/analyze/labels|text|moderation``.

The image comes as a multipart ``file``, as the raw body (``Content-Type: image/jpeg``, ``image/png`` or
``application/octet-stream``) with the options in the query string, or as JSON with ``image_base64`` or
``s3_object`` ({bucket, name}) and the options as members. The analyser runs on the server's analysis
threads; the handler awaits its future."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from visionloop.api import images
from visionloop.api.deps import ServicesDep
from visionloop.core import analyzing
from visionloop.core.keys import ObjectRef
from visionloop.core.records.analysis import BoundingBox, Point
from visionloop.errors import InvalidInput

router = APIRouter(prefix="/analyze", tags=["analysis"])

# a body may carry the largest image (from a bucket it is read server-side), base64 plus an envelope
MAX_BODY = images.max_body(analyzing.ANALYSIS_LIMITS.max_bytes)


def get_analysis(request: Request) -> analyzing.Analysis:
    from visionloop.bootstrap import server_analysis

    return server_analysis(request.app.state)


AnalysisDep = Annotated[analyzing.Analysis, Depends(get_analysis)]


class S3ObjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: str
    name: str


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_base64: str | None = None
    s3_object: S3ObjectIn | None = None


class LabelsIn(ImageIn):
    min_confidence: float | None = Field(default=None, description="0-100 (default 55)")
    max_labels: int | None = Field(default=None, description="At most this many labels (default 1000)")
    features: list[str] | None = Field(default=None, description="GENERAL_LABELS and/or IMAGE_PROPERTIES")
    include: list[str] | None = None
    exclude: list[str] | None = None
    include_categories: list[str] | None = None
    exclude_categories: list[str] | None = None
    max_dominant_colors: int | None = Field(default=None, description="0-20 (default 10)")


class BoxIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    left: float
    top: float
    width: float
    height: float


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float
    y: float


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    box: BoxIn | None = None
    polygon: list[PointIn] | None = None


class TextIn(ImageIn):
    min_confidence: float | None = Field(
        default=None, description="Words' least confidence, 0-100 (default 0)"
    )
    min_box_height: float | None = Field(default=None, description="Words' least box height, a ratio 0-1")
    min_box_width: float | None = Field(default=None, description="Words' least box width, a ratio 0-1")
    regions: list[RegionIn] | None = Field(default=None, description="At most 10 regions of interest")


class ModerationIn(ImageIn):
    min_confidence: float | None = Field(default=None, description="0-100 (default 50)")


Confidence = Annotated[float | None, Query(description="0-100")]
Names = Annotated[list[str] | None, Query()]


@router.post("/labels", openapi_extra=images.image_request_body(LabelsIn))
async def labels(
    request: Request,
    svc: ServicesDep,
    analysis: AnalysisDep,
    min_confidence: Confidence = None,
    max_labels: Annotated[int | None, Query(description="At most this many labels")] = None,
    features: Annotated[list[str] | None, Query(description="GENERAL_LABELS, IMAGE_PROPERTIES")] = None,
    include: Names = None,
    exclude: Names = None,
    include_categories: Names = None,
    exclude_categories: Names = None,
    max_dominant_colors: Annotated[int | None, Query(description="0-20")] = None,
) -> dict[str, Any]:
    """DetectLabels: labels with boxes, parents, aliases and categories; image properties on request."""
    image, body = await read_request(request, LabelsIn)
    given = {
        "min_confidence": min_confidence,
        "max_labels": max_labels,
        "features": features,
        "include": include,
        "exclude": exclude,
        "include_categories": include_categories,
        "exclude_categories": exclude_categories,
        "max_dominant_colors": max_dominant_colors,
    }
    options = analyzing.LabelOptions(**_merged(given, body))
    result = await _run(analysis, analyzing.detect_labels, svc, analysis.source, image, options)
    return labels_json(result)


@router.post("/text", openapi_extra=images.image_request_body(TextIn))
async def text(
    request: Request,
    svc: ServicesDep,
    analysis: AnalysisDep,
    min_confidence: Confidence = None,
    min_box_height: Annotated[float | None, Query(description="A ratio 0-1")] = None,
    min_box_width: Annotated[float | None, Query(description="A ratio 0-1")] = None,
) -> dict[str, Any]:
    """DetectText: LINE and WORD detections; regions of interest in a JSON body only."""
    image, body = await read_request(request, TextIn)
    given = {
        "min_confidence": min_confidence,
        "min_box_height": min_box_height,
        "min_box_width": min_box_width,
    }
    values = _merged(given, body, skip=("regions",))
    if isinstance(body, TextIn) and body.regions:
        values["regions"] = tuple(_region(r, i) for i, r in enumerate(body.regions))
    options = analyzing.TextOptions(**values)
    result = await _run(analysis, analyzing.detect_text, svc, analysis.source, image, options)
    return text_json(result)


@router.post("/moderation", openapi_extra=images.image_request_body(ModerationIn))
async def moderation(
    request: Request, svc: ServicesDep, analysis: AnalysisDep, min_confidence: Confidence = None
) -> dict[str, Any]:
    """DetectModerationLabels: labels of Rekognition's moderation taxonomy (nudity and swimwear only)."""
    image, body = await read_request(request, ModerationIn)
    options = analyzing.ModerationOptions(**_merged({"min_confidence": min_confidence}, body))
    result = await _run(analysis, analyzing.detect_moderation_labels, svc, analysis.source, image, options)
    return moderation_json(result)


async def _run(analysis: analyzing.Analysis, fn: Any, *args: Any) -> Any:
    return await asyncio.wrap_future(analysis.submit(fn, *args))


def _merged(given: dict[str, Any], body: BaseModel | None, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Options from the query string, overridden by the JSON body's members; lists become tuples."""
    values = {k: v for k, v in given.items() if v is not None}
    if body is not None:
        for name in type(body).model_fields:
            value = getattr(body, name)
            if name not in ("image_base64", "s3_object", *skip) and value is not None:
                values[name] = value
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _region(r: RegionIn, index: int) -> analyzing.Region:
    if (r.box is None) == (r.polygon is None):
        raise InvalidInput(f"regions[{index}] needs exactly one of box and polygon")
    if r.box is not None:
        return BoundingBox(r.box.left, r.box.top, r.box.width, r.box.height)
    return tuple(Point(p.x, p.y) for p in r.polygon or ())


# --- the image -------------------------------------------------------------------------------------------


async def read_request(
    request: Request, model: type[ImageIn]
) -> tuple[analyzing.ImageSource, ImageIn | None]:
    """The image (bytes or a bucket reference) and, for a JSON request, its parsed body."""
    return await images.read_image(
        request, model.model_validate_json, analyzing.ANALYSIS_LIMITS.max_bytes, ObjectRef
    )


# --- records to JSON ---------------------------------------------------------------------------------


def record_json(record: Any) -> Any:
    """A core.records.analysis record as JSON: its fields by name, nested records as objects (the CLI's --json
    prints the same)."""
    return dataclasses.asdict(record)


def labels_json(result: analyzing.LabelsResult) -> dict[str, Any]:
    out: dict[str, Any] = {"labels": [record_json(x) for x in result.labels], "model_version": result.version}
    if result.properties is not None:
        out["image_properties"] = record_json(result.properties)
    return out


def text_json(result: analyzing.TextResult) -> dict[str, Any]:
    return {"text_detections": [record_json(d) for d in result.detections], "model_version": result.version}


def moderation_json(result: analyzing.ModerationResult) -> dict[str, Any]:
    return {"moderation_labels": [record_json(m) for m in result.labels], "model_version": result.version}
