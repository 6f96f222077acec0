"""DetectModerationLabels: NudeNet's body-part detector (``nudenet`` 3.4, a YOLOv8n ONNX model that ships
in the package) mapped onto Rekognition's three-level moderation taxonomy.

NudeNet finds exposed and covered body parts, but it looks at shapes and skin tones, not at people:
on the 1,972 store photos of ``grocery-produce`` it reports a breast or genitals with ≥ 50% confidence
on 82 (kiwis, melons, apples, carrots). So a body part counts only when it lies at least half inside
a person that the COCO detector of the labels analyser (SSD-MobileNet-v2) finds with
≥ ``PERSON_CONFIDENCE`` — 1 of those 82 photos is left, and the clothed people of ``faces`` keep
their detections. The cost is close-ups where no person is recognisable; ``require_person=False``
turns the check off. The detector runs only when NudeNet found something to report.

NudeNet's classes map as follows: ``NUDENET_LABELS`` says which Rekognition label each of
its classes stands for, as a path from the top level down ("Explicit" → "Explicit Nudity" →
"Exposed Female Genitalia"). Classes that Rekognition does not moderate (faces, feet, armpits, belly)
are in ``NOT_MODERATED`` and never reported. A label is reported with the highest confidence of the
detections under it, so a top-level label carries the maximum of its children.

Only nudity and swimwear/underwear can be detected this way: violence, weapons, drugs, tobacco,
alcohol, gambling, rude gestures, hate symbols and disturbing imagery are **not** covered, and no label
of those categories is ever returned. docs/moderation.md has the full table.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from visionloop.core.records.analysis import BoundingBox, ModerationLabel
from visionloop.engines.preprocess import decode_image
from visionloop.errors import InvalidInput, Unavailable

EXPLICIT = "Explicit"
EXPLICIT_NUDITY = (EXPLICIT, "Explicit Nudity")
NON_EXPLICIT = "Non-Explicit Nudity of Intimate parts and Kissing"
NON_EXPLICIT_NUDITY = (NON_EXPLICIT, "Non-Explicit Nudity")
SWIMWEAR = "Swimwear or Underwear"

# NudeNet class → Rekognition label path (top level first); see docs/moderation.md for the reasons.
NUDENET_LABELS: dict[str, tuple[str, ...]] = {
    "FEMALE_GENITALIA_EXPOSED": (*EXPLICIT_NUDITY, "Exposed Female Genitalia"),
    "MALE_GENITALIA_EXPOSED": (*EXPLICIT_NUDITY, "Exposed Male Genitalia"),
    "BUTTOCKS_EXPOSED": (*EXPLICIT_NUDITY, "Exposed Buttocks or Anus"),
    "ANUS_EXPOSED": (*EXPLICIT_NUDITY, "Exposed Buttocks or Anus"),
    "FEMALE_BREAST_EXPOSED": (*EXPLICIT_NUDITY, "Exposed Female Nipple"),
    "MALE_BREAST_EXPOSED": (*NON_EXPLICIT_NUDITY, "Exposed Male Nipple"),
    # a breast whose shape shows under clothing (bikini, lingerie, a low-cut dress): the nipple is
    # covered, the inner fold visible, which is Rekognition's "Partially Exposed Female Breast"
    "FEMALE_BREAST_COVERED": (*NON_EXPLICIT_NUDITY, "Partially Exposed Female Breast"),
    "FEMALE_GENITALIA_COVERED": (SWIMWEAR, "Female Swimwear or Underwear"),
    # the wearer's sex is not known from these: the top-level label only
    "ANUS_COVERED": (SWIMWEAR,),
    "BUTTOCKS_COVERED": (SWIMWEAR,),
}
# NudeNet classes that no Rekognition moderation label stands for
NOT_MODERATED = frozenset(
    {
        "FACE_FEMALE",
        "FACE_MALE",
        "FEET_EXPOSED",
        "FEET_COVERED",
        "ARMPITS_EXPOSED",
        "ARMPITS_COVERED",
        "BELLY_EXPOSED",
        "BELLY_COVERED",
    }
)
# Rekognition's top-level categories that this analyser cannot detect at all
NOT_COVERED = (
    "Violence",
    "Visually Disturbing",
    "Rude Gestures",
    "Drugs & Tobacco",
    "Alcohol",
    "Gambling",
    "Hate Symbols",
)
PERSON_CLASS = 1  # "person" in the SSD detector's COCO class ids
PERSON_CONFIDENCE = 0.5  # a person detection this sure (0–1) carries body parts
NUDENET_FLOOR = 25.0  # NudeNet drops detections under 0.25 (its NMS score threshold, hard-coded)
_DECODE_SIZE = 640  # JPEGs are decoded at a reduced scale down to this; the model sees 320x320


def _package_version() -> str:
    try:
        return importlib.metadata.version("nudenet")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def labels_from_detections(
    detections: Iterable[Mapping[str, Any]], min_confidence: float = 50
) -> list[ModerationLabel]:
    """Rekognition moderation labels from NudeNet detections (``{"class": ..., "score": 0–1}``).

    Each label gets the highest confidence (0–100) of the detections mapped to it or below it; labels
    under ``min_confidence`` are left out. Sorted by confidence, a parent before its child on ties."""
    best: dict[tuple[str, ...], float] = {}
    for detection in detections:
        path = NUDENET_LABELS.get(str(detection["class"]))
        if path is None:
            continue
        confidence = 100 * float(detection["score"])
        for depth in range(1, len(path) + 1):
            prefix = path[:depth]
            best[prefix] = max(best.get(prefix, 0.0), confidence)
    labels = [
        ModerationLabel(
            name=path[-1],
            parent_name=path[-2] if len(path) > 1 else "",
            level=len(path),
            confidence=confidence,
        )
        for path, confidence in best.items()
        if confidence >= min_confidence
    ]
    return sorted(labels, key=lambda label: (-label.confidence, label.level, label.name))


def on_person(box: Sequence[float], persons: Sequence[BoundingBox]) -> bool:
    """Whether at least half of a body part's box (left, top, width, height, ratios of the image) lies
    inside one of the person boxes."""
    left, top, width, height = box
    area = width * height
    for person in persons:
        dx = min(left + width, person.left + person.width) - max(left, person.left)
        dy = min(top + height, person.top + person.height) - max(top, person.top)
        if area > 0 and dx > 0 and dy > 0 and dx * dy >= area / 2:
            return True
    return False


class ModerationAnalyser:
    """Finds nudity (DetectModerationLabels). The models load on first use, once per instance; ``detect``
    may be called from several threads at once (ONNX Runtime sessions are thread-safe, the person
    detector serialises its own calls).

    ``require_person`` (default True) reports a body part only where a person is detected (see the
    module docstring for why and what it costs)."""

    kind = "moderation"

    def __init__(self, num_threads: int | None = None, *, require_person: bool = True) -> None:
        if num_threads is not None and num_threads < 1:
            raise InvalidInput(f"num_threads must be at least 1, not {num_threads}")
        self.num_threads = num_threads
        self.require_person = require_person
        check = " + SSD-MobileNet-v2 person check" if require_person else ""
        self.version = f"visionloop-moderation-1.0 (NudeNet 320n{check}, nudenet {_package_version()})"
        self._detector: Any = None
        self._persons: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the models and run them once (the first inference is slower)."""
        detector, persons = self._load()
        detector.detect(np.full((64, 64, 3), 255, dtype=np.uint8))
        if persons is not None:
            persons.warm_up()

    def detect(self, image: bytes, *, min_confidence: float = 50) -> list[ModerationLabel]:
        """The moderation labels of an image with at least ``min_confidence`` (0–100; NudeNet itself
        reports nothing under ``NUDENET_FLOOR``)."""
        if not 0 <= min_confidence <= 100:
            raise InvalidInput(f"min_confidence must be between 0 and 100, not {min_confidence}")
        rgb = np.asarray(decode_image(image, draft_size=_DECODE_SIZE))
        detector, persons = self._load()
        found = [
            d
            for d in detector.detect(np.ascontiguousarray(rgb[:, :, ::-1]))  # NudeNet reads files as BGR
            if d["class"] in NUDENET_LABELS and 100 * float(d["score"]) >= min_confidence
        ]
        if found and persons is not None:
            height, width = rgb.shape[:2]
            people = [
                p.box
                for p in persons.detect(rgb)
                if p.class_id == PERSON_CLASS and p.score >= PERSON_CONFIDENCE
            ]
            found = [
                d
                for d in found
                if on_person(
                    [d["box"][0] / width, d["box"][1] / height, d["box"][2] / width, d["box"][3] / height],
                    people,
                )
            ]
        return labels_from_detections(found, min_confidence)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._detector is None:
                try:
                    import onnxruntime as ort
                    from nudenet import NudeDetector
                except ImportError as exc:
                    raise Unavailable(
                        "moderation needs nudenet: install visionloop's 'analysis' extra"
                    ) from exc
                if self.require_person:
                    from visionloop.analysis.labels import SsdDetector

                    self._persons = SsdDetector(self.num_threads)
                detector = NudeDetector()
                # NudeDetector takes no session options: replace its session with one on our threads
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.num_threads or os.cpu_count() or 1
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                model = os.path.join(os.path.dirname(_nudenet_file()), "320n.onnx")
                detector.onnx_session = ort.InferenceSession(
                    model, sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._detector = detector
            return self._detector, self._persons


def _nudenet_file() -> str:
    import nudenet

    return str(nudenet.__file__)
