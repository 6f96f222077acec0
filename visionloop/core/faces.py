"""Use cases of the face analyser that keep nothing (DetectFaces, CompareFaces) and the rules shared with
the collections (IndexFaces, SearchFacesByImage): Rekognition's attribute choice, its quality filter, and
the similarity of two faces.

**Similarity.** The analyser gives unit identity vectors and ``match_distance``, the Euclidean distance
under which its model says two faces are one person. A distance ``d`` reads as the percentage

    similarity(d) = 100 / (1 + exp((d - match_distance) / SIMILARITY_WIDTH) / 4)

so that ``d = match_distance`` is exactly 80, Rekognition's default threshold: the default
SimilarityThreshold (CompareFaces) and FaceMatchThreshold (searches) keep the model's own decision.
Identical faces read ~99.9, a distance 0.1 under the match distance ~97, 0.1 over it ~37.

**Quality bars** (QualityFilter): a face fails a bar for each of Rekognition's reasons it meets
(LOW_CONFIDENCE, SMALL_BOUNDING_BOX, LOW_BRIGHTNESS, LOW_SHARPNESS, EXTREME_POSE); the limits of each bar
are in ``QUALITY_BARS``; AUTO is MEDIUM. NONE keeps every face.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from visionloop.core.analyzing import AnalyserSource, FaceAnalyserPort, ImageSource, read_image
from visionloop.core.records.faces import FaceDetail
from visionloop.core.services import Services
from visionloop.errors import InvalidInput

MAX_FACES = 100  # DetectFaces returns, and CompareFaces compares, the 100 largest faces
DEFAULT_SIMILARITY_THRESHOLD = 80.0
SIMILARITY_WIDTH = 0.04
QUALITY_FILTERS = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")
# DetectFaces' Attributes: the names Rekognition knows, and those the analyser estimates (by FaceAttribute
# name, or AgeRange); the others are accepted and answer nothing (see docs/faces.md)
ATTRIBUTE_NAMES = (
    "DEFAULT",
    "ALL",
    "AGE_RANGE",
    "BEARD",
    "EMOTIONS",
    "EYE_DIRECTION",
    "EYEGLASSES",
    "EYES_OPEN",
    "GENDER",
    "MOUTH_OPEN",
    "MUSTACHE",
    "FACE_OCCLUDED",
    "SMILE",
    "SUNGLASSES",
)
ESTIMATED = {
    "AGE_RANGE": "AgeRange",
    "GENDER": "Gender",
    "EYES_OPEN": "EyesOpen",
    "MOUTH_OPEN": "MouthOpen",
    "EMOTIONS": "Emotions",
}


# --- similarity --------------------------------------------------------------------------------------


def distance(a: Sequence[float], b: Sequence[float]) -> float:
    """The Euclidean distance of two identity vectors."""
    if len(a) != len(b):
        raise InvalidInput(f"identity vectors of {len(a)} and {len(b)} values do not compare")
    return math.sqrt(sum((x - y) * (x - y) for x, y in zip(a, b, strict=True)))


def similarity(d: float, match_distance: float) -> float:
    """The 0-100 similarity of two faces ``d`` apart (see the module doc); 80 at ``match_distance``."""
    z = max(-50.0, min(50.0, (d - match_distance) / SIMILARITY_WIDTH))
    return 100.0 / (1.0 + math.exp(z) / 4.0)


def distance_for(similarity_threshold: float, match_distance: float) -> float:
    """The largest distance whose similarity is at least ``similarity_threshold`` (the inverse of
    ``similarity``; for searching vectors by distance): 0 < threshold ≤ 100."""
    t = min(max(similarity_threshold, 1e-9), 100.0 - 1e-9)
    return match_distance + SIMILARITY_WIDTH * math.log(4.0 * (100.0 / t - 1.0))


# --- quality -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityBar:
    """The least a face needs to pass a QualityFilter: detector confidence, the side of its box in
    pixels (the square root of its area), brightness and sharpness (0-100), and the largest |yaw| and
    |pitch| in degrees."""

    confidence: float
    side: float
    brightness: float
    sharpness: float
    pose: float


QUALITY_BARS: dict[str, QualityBar] = {
    "LOW": QualityBar(confidence=90.0, side=30.0, brightness=10.0, sharpness=10.0, pose=70.0),
    "MEDIUM": QualityBar(confidence=95.0, side=50.0, brightness=20.0, sharpness=25.0, pose=50.0),
    "HIGH": QualityBar(confidence=99.0, side=80.0, brightness=30.0, sharpness=45.0, pose=35.0),
}
QUALITY_BARS["AUTO"] = QUALITY_BARS["MEDIUM"]


def check_quality_filter(name: str) -> str:
    if name not in QUALITY_FILTERS:
        raise InvalidInput(f"quality filter must be one of {', '.join(QUALITY_FILTERS)}, not {name!r}")
    return name


def quality_reasons(face: FaceDetail, quality_filter: str, image_size: tuple[int, int]) -> tuple[str, ...]:
    """Rekognition's reasons (UnindexedFaces' Reasons) why ``face`` fails ``quality_filter`` in an image of
    ``image_size`` pixels (either orientation: only the area counts); () when it passes or for NONE."""
    bar = QUALITY_BARS.get(check_quality_filter(quality_filter))
    if bar is None:
        return ()
    side = math.sqrt(max(0.0, face.box.width * face.box.height * image_size[0] * image_size[1]))
    reasons = []
    if max(abs(face.pose.yaw), abs(face.pose.pitch)) > bar.pose:
        reasons.append("EXTREME_POSE")
    if face.quality.brightness < bar.brightness:
        reasons.append("LOW_BRIGHTNESS")
    if face.quality.sharpness < bar.sharpness:
        reasons.append("LOW_SHARPNESS")
    if face.confidence < bar.confidence:
        reasons.append("LOW_CONFIDENCE")
    if side < bar.side:
        reasons.append("SMALL_BOUNDING_BOX")
    return tuple(reasons)


# --- DetectFaces -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FacesResult:
    faces: tuple[FaceDetail, ...]
    version: str


def check_attributes(names: Sequence[str]) -> tuple[str, ...]:
    """DetectFaces' Attributes, checked; the estimated attribute names (FaceAttribute.name) they ask for."""
    unknown = [n for n in names if n not in ATTRIBUTE_NAMES]
    if unknown:
        raise InvalidInput(f"unknown face attribute {unknown[0]!r}; known: {', '.join(ATTRIBUTE_NAMES)}")
    if "ALL" in names:
        return tuple(ESTIMATED.values())
    return tuple(ESTIMATED[n] for n in dict.fromkeys(names) if n in ESTIMATED)


def _keep_attributes(face: FaceDetail, wanted: tuple[str, ...]) -> FaceDetail:
    kept = tuple(a for a in face.attributes if a.name in wanted)
    age_range = face.age_range if "AgeRange" in wanted else None
    emotions = face.emotions if "Emotions" in wanted else ()
    if kept == face.attributes and age_range == face.age_range and emotions == face.emotions:
        return face
    return replace(face, attributes=kept, age_range=age_range, emotions=emotions)


def detect_faces(
    svc: Services, analysers: AnalyserSource, image: ImageSource, attributes: Sequence[str] = ("DEFAULT",)
) -> FacesResult:
    """DetectFaces: the 100 largest faces with box, confidence, landmarks, pose and quality, and the
    estimated attributes that ``attributes`` asks for."""
    wanted = check_attributes(attributes)
    data = read_image(svc, image)
    analyser: FaceAnalyserPort = analysers("faces")
    faces = analyser.detect(data, attributes=bool(wanted))[:MAX_FACES]
    return FacesResult(tuple(_keep_attributes(f, wanted) for f in faces), analyser.version)


# --- CompareFaces ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareOptions:
    similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD
    quality_filter: str = "NONE"


@dataclass(frozen=True)
class FaceMatch:
    similarity: float
    face: FaceDetail


@dataclass(frozen=True)
class CompareResult:
    """The source image's largest face; the target's faces at or above the threshold (most similar
    first) and the others (largest first); faces that fail the quality filter are in neither."""

    source_face: FaceDetail
    matches: tuple[FaceMatch, ...]
    unmatched: tuple[FaceDetail, ...]
    version: str


def check_compare_options(o: CompareOptions) -> CompareOptions:
    t = o.similarity_threshold
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or not 0 <= t <= 100:
        raise InvalidInput(f"similarity_threshold must be a number from 0 to 100, not {t!r}")
    check_quality_filter(o.quality_filter)
    return o


def _passing(svc: Services, faces: list[FaceDetail], data: bytes, quality_filter: str) -> list[FaceDetail]:
    """The faces of the image ``data`` that pass ``quality_filter``."""
    if quality_filter == "NONE":
        return faces
    info = svc.inspector.inspect(data)
    return [f for f in faces if not quality_reasons(f, quality_filter, (info.width, info.height))]


def compare_faces(
    svc: Services,
    analysers: AnalyserSource,
    source: ImageSource,
    target: ImageSource,
    options: CompareOptions | None = None,
) -> CompareResult:
    """CompareFaces: the source image's largest face against each of the target's 100 largest faces.
    InvalidInput when the source image has no face (that passes the quality filter) or the target has
    none at all, as Rekognition answers (InvalidParameterException)."""
    o = check_compare_options(options or CompareOptions())
    source_data, target_data = read_image(svc, source), read_image(svc, target)
    analyser: FaceAnalyserPort = analysers("faces")
    sources = _passing(svc, analyser.detect(source_data, embeddings=True), source_data, o.quality_filter)
    if not sources:
        raise InvalidInput("there is no face in the source image" + _filtered(o.quality_filter))
    targets = analyser.detect(target_data, embeddings=True)[:MAX_FACES]
    if not targets:
        raise InvalidInput("there is no face in the target image")
    face = sources[0]
    assert face.embedding is not None
    matches, unmatched = [], []
    for t in _passing(svc, targets, target_data, o.quality_filter):
        assert t.embedding is not None
        s = similarity(distance(face.embedding, t.embedding), analyser.match_distance)
        if s >= o.similarity_threshold:
            matches.append(FaceMatch(round(s, 5), _without_vector(t)))
        else:
            unmatched.append(_without_vector(t))
    matches.sort(key=lambda m: -m.similarity)
    return CompareResult(_without_vector(face), tuple(matches), tuple(unmatched), analyser.version)


def _filtered(quality_filter: str) -> str:
    return "" if quality_filter == "NONE" else f" that passes the {quality_filter} quality filter"


def _without_vector(face: FaceDetail) -> FaceDetail:
    return replace(face, embedding=None)


__all__ = [
    "ATTRIBUTE_NAMES",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "MAX_FACES",
    "QUALITY_BARS",
    "QUALITY_FILTERS",
    "CompareOptions",
    "CompareResult",
    "FaceMatch",
    "FacesResult",
    "QualityBar",
    "check_attributes",
    "check_compare_options",
    "check_quality_filter",
    "compare_faces",
    "detect_faces",
    "distance",
    "distance_for",
    "quality_reasons",
    "similarity",
]
