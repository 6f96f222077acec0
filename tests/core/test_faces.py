"""DetectFaces and CompareFaces use cases with a stand-in face analyser: the similarity scale, the quality
bars and their reasons, the attributes asked for, and Rekognition's answers when there is no face."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tests.factories import image_bytes
from visionloop.core import faces
from visionloop.core.records.analysis import BoundingBox
from visionloop.core.records.faces import FaceAttribute, FaceDetail, FacePose, FaceQuality
from visionloop.core.services import Services
from visionloop.errors import InvalidInput

MATCH = 0.4
SOURCE, TARGET, EMPTY = (
    image_bytes(400, 300, (10, 20, 30)),
    image_bytes(400, 300, (200, 20, 30)),
    image_bytes(120, 100),
)


def unit(*values: float) -> tuple[float, ...]:
    n = math.sqrt(sum(v * v for v in values))
    return tuple(v / n for v in values)


def face(width: float = 0.5, vector: tuple[float, ...] = (1.0, 0.0), **changes: Any) -> FaceDetail:
    f = FaceDetail(
        box=BoundingBox(0.1, 0.1, width, width),
        confidence=99.9,
        landmarks=(),
        pose=FacePose(0, 0, 0),
        quality=FaceQuality(50, 80),
        age_range=(30, 40),
        attributes=(FaceAttribute("EyesOpen", True, 99.0), FaceAttribute("MouthOpen", False, 90.0)),
        embedding=vector,
    )
    return replace(f, **changes)


@dataclass
class Faces:
    """A face analyser that answers the faces it was given for each image (largest first)."""

    by_image: dict[bytes, list[FaceDetail]]
    kind: str = "faces"
    version: str = "fake-faces-1"
    embedding_dim: int = 2
    match_distance: float = MATCH
    calls: list[dict[str, Any]] = field(default_factory=list)

    def warm_up(self) -> None:
        pass

    def detect(self, image: bytes, *, attributes: bool = False, embeddings: bool = False) -> list[FaceDetail]:
        self.calls.append({"attributes": attributes, "embeddings": embeddings})
        found = self.by_image.get(image, [])
        return [
            replace(
                f,
                attributes=f.attributes if attributes else (),
                embedding=f.embedding if embeddings else None,
            )
            for f in found
        ]


def test_similarity_is_80_at_the_match_distance_and_falls_with_distance() -> None:
    assert faces.similarity(MATCH, MATCH) == pytest.approx(80.0)
    assert faces.similarity(0.0, MATCH) > 99.9
    assert faces.similarity(MATCH - 0.1, MATCH) > 95 > faces.similarity(MATCH + 0.1, MATCH)
    values = [faces.similarity(d / 10, MATCH) for d in range(21)]
    assert values == sorted(values, reverse=True) and values[-1] >= 0
    for threshold in (1, 50, 80, 99, 99.99):
        d = faces.distance_for(threshold, MATCH)
        assert faces.similarity(d, MATCH) == pytest.approx(threshold)
    assert faces.distance(unit(1, 0), unit(0, 1)) == pytest.approx(math.sqrt(2))
    with pytest.raises(InvalidInput):
        faces.distance((1.0, 0.0), (1.0, 0.0, 0.0))


def test_quality_bars_give_rekognitions_reasons() -> None:
    good = face(width=0.2)
    for level in faces.QUALITY_FILTERS:
        assert faces.quality_reasons(good, level, (1000, 800)) == ()
    bad = face(
        width=0.02,
        confidence=91.0,
        pose=FacePose(0, 60, 0),
        quality=FaceQuality(brightness=5, sharpness=20),
    )
    assert faces.quality_reasons(bad, "NONE", (1000, 800)) == ()
    assert set(faces.quality_reasons(bad, "HIGH", (1000, 800))) == {
        "EXTREME_POSE",
        "LOW_BRIGHTNESS",
        "LOW_SHARPNESS",
        "LOW_CONFIDENCE",
        "SMALL_BOUNDING_BOX",
    }
    assert faces.quality_reasons(bad, "LOW", (1000, 800)) == ("LOW_BRIGHTNESS", "SMALL_BOUNDING_BOX")
    assert faces.quality_reasons(bad, "AUTO", (1000, 800)) == faces.quality_reasons(
        bad, "MEDIUM", (1000, 800)
    )
    # a 40 px face: the side is the square root of the box's area in pixels, whatever the orientation
    small = face(width=0.05)
    assert faces.quality_reasons(small, "MEDIUM", (800, 800)) == ("SMALL_BOUNDING_BOX",)
    assert faces.quality_reasons(small, "LOW", (800, 800)) == ()
    with pytest.raises(InvalidInput, match="quality filter"):
        faces.quality_reasons(good, "BEST", (100, 100))


def test_detect_faces_asks_for_attributes_only_when_wanted(services: Services) -> None:
    analyser = Faces({SOURCE: [face(0.5), face(0.3)]})
    plain = faces.detect_faces(services, lambda kind: analyser, SOURCE)
    assert len(plain.faces) == 2 and plain.version == "fake-faces-1"
    assert analyser.calls[-1] == {"attributes": False, "embeddings": False}
    assert all(f.attributes == () for f in plain.faces)
    every = faces.detect_faces(services, lambda kind: analyser, SOURCE, ["ALL"])
    assert [a.name for a in every.faces[0].attributes] == ["EyesOpen", "MouthOpen"]
    assert every.faces[0].age_range == (30, 40)
    mouth = faces.detect_faces(services, lambda kind: analyser, SOURCE, ["DEFAULT", "MOUTH_OPEN", "SMILE"])
    assert [a.name for a in mouth.faces[0].attributes] == ["MouthOpen"] and mouth.faces[0].age_range is None
    age = faces.detect_faces(services, lambda kind: analyser, SOURCE, ["AGE_RANGE"])
    assert age.faces[0].attributes == () and age.faces[0].age_range == (30, 40)
    nothing = faces.detect_faces(services, lambda kind: analyser, SOURCE, ["BEARD"])
    assert analyser.calls[-1]["attributes"] is False and nothing.faces[0].attributes == ()
    with pytest.raises(InvalidInput, match="unknown face attribute"):
        faces.detect_faces(services, lambda kind: analyser, SOURCE, ["AGE"])
    many = Faces({SOURCE: [face(0.5)] * 130})
    assert len(faces.detect_faces(services, lambda kind: many, SOURCE).faces) == faces.MAX_FACES


def test_compare_faces(services: Services) -> None:
    me, near, far = unit(1, 0), unit(1, 0.2), unit(0, 1)
    analyser = Faces(
        {
            SOURCE: [face(0.5, me), face(0.2, far)],
            TARGET: [face(0.4, far), face(0.3, near), face(0.2, me, quality=FaceQuality(50, 5))],
        }
    )
    r = faces.compare_faces(services, lambda kind: analyser, SOURCE, TARGET)
    assert r.source_face.box.width == 0.5 and r.source_face.embedding is None
    assert [m.face.box.width for m in r.matches] == [0.2, 0.3]  # most similar first
    assert r.matches[0].similarity > r.matches[1].similarity >= 80
    assert [f.box.width for f in r.unmatched] == [0.4] and r.unmatched[0].embedding is None
    filtered = faces.compare_faces(
        services, lambda kind: analyser, SOURCE, TARGET, faces.CompareOptions(quality_filter="LOW")
    )
    assert [m.face.box.width for m in filtered.matches] == [0.3]  # the blurred face is not compared
    strict = faces.compare_faces(services, lambda kind: analyser, SOURCE, TARGET, faces.CompareOptions(99.99))
    assert [m.face.box.width for m in strict.matches] == [0.2] and len(strict.unmatched) == 2


def test_compare_faces_without_a_face(services: Services) -> None:
    analyser = Faces({SOURCE: [face(0.5)], TARGET: [face(0.5, quality=FaceQuality(2, 2))]})
    with pytest.raises(InvalidInput, match="no face in the source image"):
        faces.compare_faces(services, lambda kind: analyser, EMPTY, TARGET)
    with pytest.raises(InvalidInput, match="no face in the target image"):
        faces.compare_faces(services, lambda kind: analyser, SOURCE, EMPTY)
    with pytest.raises(InvalidInput, match="passes the HIGH quality filter"):
        faces.compare_faces(
            services, lambda kind: analyser, TARGET, SOURCE, faces.CompareOptions(quality_filter="HIGH")
        )
    # a target face under the bar is no error: it is just not compared
    r = faces.compare_faces(
        services, lambda kind: analyser, SOURCE, TARGET, faces.CompareOptions(quality_filter="HIGH")
    )
    assert r.matches == () and r.unmatched == ()
    for bad in (
        faces.CompareOptions(101),
        faces.CompareOptions(float("nan")),
        faces.CompareOptions(80, "BEST"),
    ):
        with pytest.raises(InvalidInput):
            faces.compare_faces(services, lambda kind: analyser, SOURCE, TARGET, bad)
