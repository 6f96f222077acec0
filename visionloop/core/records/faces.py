"""What a face analyser finds in an image, in Rekognition's terms (its FaceDetail), without any wire shape.

Coordinates are ratios of the image (top-left origin), as Rekognition returns them; confidences are
0-100; angles are degrees. An analyser sets only what it can estimate honestly: an attribute it does not
estimate is absent (None or not in ``attributes``), never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from visionloop.core.records.analysis import BoundingBox


@dataclass(frozen=True)
class FaceLandmark:
    """A point of the face by Rekognition's landmark type (eyeLeft, nose, mouthLeft, …)."""

    type: str
    x: float
    y: float


@dataclass(frozen=True)
class FacePose:
    roll: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class FaceQuality:
    """Brightness and sharpness, 0-100 (higher is brighter, sharper)."""

    brightness: float
    sharpness: float


@dataclass(frozen=True)
class FaceAttribute:
    """A yes/no or named attribute with its confidence: Smile True 92.1, Gender Female 88.0, …
    (Rekognition's names: Smile, Eyeglasses, Sunglasses, Gender, Beard, Mustache, EyesOpen, MouthOpen,
    FaceOccluded; emotions are listed apart)."""

    name: str
    value: bool | str
    confidence: float


@dataclass(frozen=True)
class Emotion:
    type: str  # HAPPY, SAD, ANGRY, CONFUSED, DISGUSTED, SURPRISED, CALM, FEAR
    confidence: float


@dataclass(frozen=True)
class FaceDetail:
    """One face: where it is, how sure the detector is, its landmarks, pose and quality; with
    ``attributes`` asked for, what the analyser estimates (age range, attributes, emotions); with
    ``embeddings`` asked for, its identity vector (unit length) for comparing and searching."""

    box: BoundingBox
    confidence: float
    landmarks: tuple[FaceLandmark, ...]
    pose: FacePose
    quality: FaceQuality
    age_range: tuple[int, int] | None = None
    attributes: tuple[FaceAttribute, ...] = ()
    emotions: tuple[Emotion, ...] = ()
    embedding: tuple[float, ...] | None = None


__all__ = ["Emotion", "FaceAttribute", "FaceDetail", "FaceLandmark", "FacePose", "FaceQuality"]
