"""DetectFaces and CompareFaces over core.faces: the request members checked as Rekognition checks them,
the analyser run on the server's analysis threads, and the answer in Rekognition's shapes (FaceDetail,
ComparedFace, ComparedSourceImageFace, CompareFacesMatch). The shapes are shared with the collections'
operations (IndexFaces' FaceDetail, the searches' SearchedFaceBoundingBox).

Each operation returns ``(future, finish)`` for responses.Deferred."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from visionloop.aws.analysis import box
from visionloop.aws.exceptions import InvalidParameterException
from visionloop.aws.images import MAX_BYTES, image_member, missing_object
from visionloop.aws.params import Params
from visionloop.core import analyzing, faces
from visionloop.core.keys import ObjectRef
from visionloop.core.records.faces import FaceDetail
from visionloop.core.services import Services
from visionloop.errors import ObjectNotFound, Unavailable

Json = dict[str, Any]
T = TypeVar("T")
Answer = tuple[Future[Any], Callable[[Any], Json]]
COMPARED_LANDMARKS = ("eyeLeft", "eyeRight", "mouthLeft", "mouthRight", "nose")  # ComparedFace's five
# FaceAttribute name → FaceDetail member (its Value and Confidence)
ATTRIBUTE_MEMBERS = (
    "Smile",
    "Eyeglasses",
    "Sunglasses",
    "Gender",
    "Beard",
    "Mustache",
    "EyesOpen",
    "MouthOpen",
    "FaceOccluded",
)


def submit(analysis: analyzing.Analysis | None, fn: Callable[[analyzing.AnalyserSource], T]) -> Future[T]:
    """Run ``fn(analysers)`` on the analysis threads (Unavailable when the server has none)."""
    if analysis is None:
        raise Unavailable("the pretrained analysers are not set up on this server")
    return analysis.submit(fn, analysis.source)


def read(svc: Services, image: bytes | ObjectRef) -> bytes:
    """The image's checked bytes; a missing bucket object is Rekognition's InvalidS3ObjectException."""
    try:
        return analyzing.read_image(svc, image)
    except ObjectNotFound:
        if isinstance(image, bytes):
            raise
        raise missing_object(image) from None


# --- DetectFaces -----------------------------------------------------------------------------------------


def detect_faces(svc: Services, analysis: analyzing.Analysis | None, p: Params) -> Answer:
    names = p.strings("Attributes") or ["DEFAULT"]
    for name in names:
        if name not in faces.ATTRIBUTE_NAMES:
            raise InvalidParameterException(
                f"Unknown attribute {name!r}; use one of {', '.join(faces.ATTRIBUTE_NAMES)}."
            )
    image = image_member(p, max_bytes=MAX_BYTES)

    def run(analysers: analyzing.AnalyserSource) -> faces.FacesResult:
        return faces.detect_faces(svc, analysers, read(svc, image), names)

    return submit(analysis, run), detect_answer


def detect_answer(r: faces.FacesResult) -> Json:
    return {"FaceDetails": [face_detail(f) for f in r.faces]}


def pose(f: FaceDetail) -> Json:
    return {"Roll": f.pose.roll, "Yaw": f.pose.yaw, "Pitch": f.pose.pitch}


def quality(f: FaceDetail) -> Json:
    return {"Brightness": f.quality.brightness, "Sharpness": f.quality.sharpness}


def face_detail(f: FaceDetail) -> Json:
    """Rekognition's FaceDetail: the defaults, then what the analyser estimated (nothing else)."""
    out: Json = {"BoundingBox": box(f.box)}
    if f.age_range is not None:
        out["AgeRange"] = {"Low": f.age_range[0], "High": f.age_range[1]}
    for a in f.attributes:
        if a.name in ATTRIBUTE_MEMBERS:
            out[a.name] = {"Value": a.value, "Confidence": a.confidence}
    if f.emotions:
        out["Emotions"] = [{"Type": e.type, "Confidence": e.confidence} for e in f.emotions]
    out["Landmarks"] = [{"Type": x.type, "X": x.x, "Y": x.y} for x in f.landmarks]
    out["Pose"] = pose(f)
    out["Quality"] = quality(f)
    out["Confidence"] = f.confidence
    return out


# --- CompareFaces ----------------------------------------------------------------------------------------


def compare_faces(svc: Services, analysis: analyzing.Analysis | None, p: Params) -> Answer:
    threshold = p.number("SimilarityThreshold", lo=0, hi=100)
    quality_filter = p.enum("QualityFilter", faces.QUALITY_FILTERS) or "NONE"
    options = faces.check_compare_options(
        faces.CompareOptions(
            faces.DEFAULT_SIMILARITY_THRESHOLD if threshold is None else threshold, str(quality_filter)
        )
    )
    source_image = image_member(p, name="SourceImage", max_bytes=MAX_BYTES)
    target_image = image_member(p, name="TargetImage", max_bytes=MAX_BYTES)

    def run(analysers: analyzing.AnalyserSource) -> faces.CompareResult:
        data = read(svc, source_image), read(svc, target_image)
        return faces.compare_faces(svc, analysers, data[0], data[1], options)

    return submit(analysis, run), compare_answer


def compared_face(f: FaceDetail) -> Json:
    """Rekognition's ComparedFace: box, confidence, the five main landmarks, pose and quality."""
    main = [x for x in f.landmarks if x.type in COMPARED_LANDMARKS]
    return {
        "BoundingBox": box(f.box),
        "Confidence": f.confidence,
        "Landmarks": [{"Type": x.type, "X": x.x, "Y": x.y} for x in main],
        "Pose": pose(f),
        "Quality": quality(f),
    }


def compare_answer(r: faces.CompareResult) -> Json:
    return {
        "SourceImageFace": {"BoundingBox": box(r.source_face.box), "Confidence": r.source_face.confidence},
        "FaceMatches": [{"Similarity": m.similarity, "Face": compared_face(m.face)} for m in r.matches],
        "UnmatchedFaces": [compared_face(f) for f in r.unmatched],
    }
