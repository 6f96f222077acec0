"""DetectLabels, DetectText and DetectModerationLabels over core.analyzing: the request members checked as
Rekognition checks them, the analyser run on the server's analysis threads (the endpoint awaits the
future without holding a thread, as for DetectCustomLabels), and the answer in Rekognition's shapes.

Each ``detect_*`` returns ``(future, finish)`` for responses.Deferred."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from visionloop.aws import moderation_loops
from visionloop.aws.exceptions import InvalidParameterException
from visionloop.aws.images import MAX_BYTES, image_member, missing_object
from visionloop.aws.model_versions import LABEL_MODEL_VERSION, MODERATION_MODEL_VERSION, TEXT_MODEL_VERSION
from visionloop.aws.params import Params
from visionloop.core import analyzing
from visionloop.core.keys import ObjectRef
from visionloop.core.records.analysis import (
    BoundingBox,
    DominantColor,
    ImageLabel,
    ImageQuality,
    ModerationLabel,
    Point,
    RegionProperties,
    TextDetection,
)
from visionloop.core.services import Services
from visionloop.errors import ObjectNotFound, Unavailable

Json = dict[str, Any]
T = TypeVar("T")
Answer = tuple[Future[Any], Callable[[Any], Json]]
FILTERS = (
    "LabelInclusionFilters",
    "LabelExclusionFilters",
    "LabelCategoryInclusionFilters",
    "LabelCategoryExclusionFilters",
)


def _submit(
    analysis: analyzing.Analysis | None, image: bytes | ObjectRef, fn: Callable[..., T], *args: Any
) -> Future[T]:
    if analysis is None:
        raise Unavailable("the pretrained analysers are not set up on this server")

    def run() -> T:
        try:
            return fn(*args)
        except ObjectNotFound:
            if isinstance(image, bytes):
                raise
            raise missing_object(image) from None

    return analysis.submit(run)


# --- DetectLabels ----------------------------------------------------------------------------------------


def label_options(p: Params) -> analyzing.LabelOptions:
    features = p.strings("Features", max_items=2)
    for f in features or ():
        if f not in analyzing.FEATURES:
            raise InvalidParameterException(f"Unknown feature {f!r}; use GENERAL_LABELS or IMAGE_PROPERTIES.")
    settings = p.struct("Settings")
    general = settings.struct("GeneralLabels") if settings else None
    filters = [
        tuple((general.strings(name, max_items=100, max_len=50) if general else None) or ())
        for name in FILTERS
    ]
    properties = settings.struct("ImageProperties") if settings else None
    colours = properties.integer("MaxDominantColors", lo=0, hi=20) if properties else None
    min_confidence = p.number("MinConfidence", lo=0, hi=100)
    return analyzing.LabelOptions(
        max_labels=p.integer("MaxLabels", lo=0),
        min_confidence=analyzing.DEFAULT_LABEL_CONFIDENCE if min_confidence is None else min_confidence,
        features=tuple(dict.fromkeys(features or [analyzing.GENERAL_LABELS])),
        include=filters[0],
        exclude=filters[1],
        include_categories=filters[2],
        exclude_categories=filters[3],
        max_dominant_colors=10 if colours is None else colours,
    )


def detect_labels(svc: Services, analysis: analyzing.Analysis | None, p: Params) -> Answer:
    options = analyzing.check_label_options(label_options(p))
    image = image_member(p, max_bytes=MAX_BYTES)
    source = analysis.source if analysis else None
    future = _submit(analysis, image, analyzing.detect_labels, svc, source, image, options)
    general = analyzing.GENERAL_LABELS in options.features
    return future, lambda r: labels_answer(r, general)


def box(b: BoundingBox) -> Json:
    return {"Width": b.width, "Height": b.height, "Left": b.left, "Top": b.top}


def label(x: ImageLabel) -> Json:
    return {
        "Name": x.name,
        "Confidence": x.confidence,
        "Instances": [{"BoundingBox": box(i.box), "Confidence": i.confidence} for i in x.instances],
        "Parents": [{"Name": n} for n in x.parents],
        "Aliases": [{"Name": n} for n in x.aliases],
        "Categories": [{"Name": n} for n in x.categories],
    }


def colour(c: DominantColor) -> Json:
    return {
        "Red": c.red,
        "Green": c.green,
        "Blue": c.blue,
        "HexCode": c.hex_code,
        "CSSColor": c.css_color,
        "SimplifiedColor": c.simplified_color,
        "PixelPercent": c.pixel_percent,
    }


def quality(q: ImageQuality) -> Json:
    out: Json = {"Brightness": q.brightness, "Sharpness": q.sharpness}
    if q.contrast is not None:
        out["Contrast"] = q.contrast
    return out


def region(r: RegionProperties) -> Json:
    return {"Quality": quality(r.quality), "DominantColors": [colour(c) for c in r.dominant_colors]}


def labels_answer(r: analyzing.LabelsResult, general: bool) -> Json:
    out: Json = {"LabelModelVersion": LABEL_MODEL_VERSION}
    if general:
        out["Labels"] = [label(x) for x in r.labels]
    if r.properties is not None:
        props: Json = {
            "Quality": quality(r.properties.quality),
            "DominantColors": [colour(c) for c in r.properties.dominant_colors],
        }
        if r.properties.foreground is not None:
            props["Foreground"] = region(r.properties.foreground)
        if r.properties.background is not None:
            props["Background"] = region(r.properties.background)
        out["ImageProperties"] = props
    return out


# --- DetectText ------------------------------------------------------------------------------------------


def _region(r: Params) -> analyzing.Region:
    has_box, has_polygon = r.has("BoundingBox"), r.has("Polygon")
    if has_box == has_polygon:
        raise InvalidParameterException(f"{r.path} needs exactly one of BoundingBox and Polygon.")
    if has_box:
        b = r.required_struct("BoundingBox")
        values = [b.number(n, lo=0, hi=1) for n in ("Left", "Top", "Width", "Height")]
        if any(v is None for v in values):
            raise InvalidParameterException(f"{b.path} needs Left, Top, Width and Height.")
        left, top, width, height = (float(v or 0) for v in values)
        return BoundingBox(left, top, width, height)
    points = []
    for q in r.structs("Polygon", min_items=3) or []:
        x, y = q.number("X", lo=0, hi=1), q.number("Y", lo=0, hi=1)
        if x is None or y is None:
            raise InvalidParameterException(f"{q.path} needs X and Y.")
        points.append(Point(x, y))
    return tuple(points)


def text_options(p: Params) -> analyzing.TextOptions:
    filters = p.struct("Filters")
    if filters is None:
        return analyzing.TextOptions()
    words = filters.struct("WordFilter")
    values: dict[str, Any] = {}
    if words is not None:
        confidence = words.number("MinConfidence", lo=0, hi=100)
        values["min_confidence"] = analyzing.DEFAULT_WORD_CONFIDENCE if confidence is None else confidence
        values["min_box_height"] = words.number("MinBoundingBoxHeight", lo=0, hi=1) or 0.0
        values["min_box_width"] = words.number("MinBoundingBoxWidth", lo=0, hi=1) or 0.0
    regions = filters.structs("RegionsOfInterest", max_items=analyzing.MAX_REGIONS) or []
    values["regions"] = tuple(_region(r) for r in regions)
    return analyzing.TextOptions(**values)


def detect_text(svc: Services, analysis: analyzing.Analysis | None, p: Params) -> Answer:
    options = analyzing.check_text_options(text_options(p))
    image = image_member(p, max_bytes=MAX_BYTES)
    source = analysis.source if analysis else None
    future = _submit(analysis, image, analyzing.detect_text, svc, source, image, options)
    return future, text_answer


def text_detection(d: TextDetection) -> Json:
    out: Json = {"DetectedText": d.text, "Type": d.kind, "Id": d.id}
    if d.parent_id is not None:
        out["ParentId"] = d.parent_id
    out["Confidence"] = d.confidence
    out["Geometry"] = {"BoundingBox": box(d.box), "Polygon": [{"X": q.x, "Y": q.y} for q in d.polygon]}
    return out


def text_answer(r: analyzing.TextResult) -> Json:
    return {
        "TextDetections": [text_detection(d) for d in r.detections],
        "TextModelVersion": TEXT_MODEL_VERSION,
    }


# --- DetectModerationLabels ------------------------------------------------------------------------------


def detect_moderation_labels(
    svc: Services, analysis: analyzing.Analysis | None, p: Params, region: str, account: str
) -> Answer:
    if p.has("ProjectVersion"):
        raise InvalidParameterException(
            "ProjectVersion (a moderation adapter) is not supported: adapters are not."
        )
    min_confidence = p.number("MinConfidence", lo=0, hi=100)
    options = analyzing.ModerationOptions(
        analyzing.DEFAULT_MODERATION_CONFIDENCE if min_confidence is None else min_confidence
    )
    image = image_member(p, max_bytes=MAX_BYTES)
    loop = moderation_loops.review_request(svc, p, region, account)
    source = analysis.source if analysis else None
    future = _submit(analysis, image, _moderate, svc, source, image, options, loop)
    return future, lambda found: moderation_answer(*found)


def _moderate(
    svc: Services,
    source: analyzing.AnalyserSource,
    image: bytes | ObjectRef,
    options: analyzing.ModerationOptions,
    loop: moderation_loops.ReviewRequest | None,
) -> tuple[analyzing.ModerationResult, Json | None]:
    """The moderation labels and, with a HumanLoopConfig, the human loop's activation (same thread)."""
    result = analyzing.detect_moderation_labels(svc, source, image, options)
    if loop is None:
        return result, None
    data = analyzing.read_image(svc, image)
    return result, moderation_loops.activate(svc, loop, data, image, result.labels, MODERATION_MODEL_VERSION)


def moderation_label(m: ModerationLabel) -> Json:
    return {"Confidence": m.confidence, "Name": m.name, "ParentName": m.parent_name, "TaxonomyLevel": m.level}


def moderation_answer(r: analyzing.ModerationResult, activation: Json | None = None) -> Json:
    """The answer; ContentTypes (animated, illustrated, ...) is always empty: the analyser tells none."""
    out: Json = {
        "ModerationLabels": [moderation_label(m) for m in r.labels],
        "ModerationModelVersion": MODERATION_MODEL_VERSION,
        "ContentTypes": [],
    }
    if activation is not None:
        out["HumanLoopActivationOutput"] = activation
    return out
