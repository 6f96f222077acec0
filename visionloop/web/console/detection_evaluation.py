"""An object detector's evaluation as the console shows it: read from the JSON the engine stored
(``ModelVersion.evaluation`` with ``"task": "object_detection"``, written by
engines/detection/report.py) into typed records, with the per-image outcomes, the gallery's filters and
the comparison of two detectors.

Pure like web.console.evaluation: the records are rebuilt from the stored JSON on each page, and a field
the engine did not store reads as None or empty, never as an error.

Per image, a prediction (kept at its label's assumed threshold) is *correct* when it matched a true box
of its label at IoU ≥ the evaluation's threshold (the engine decides and stores it); a wrong one is a
false positive. A true box that no correct prediction of its label overlaps at that IoU is *missed*, a
false negative."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from visionloop.core.records.evaluation import MIN_RELIABLE_TEST_IMAGES, LabelMetrics
from visionloop.web.console.evaluation import (
    CompareRow,
    Comparison,
    EvaluationFacts,
    _int,
    _map,
    _maps,
    _num,
    _strs,
    delta,
)

TASK = "object_detection"
DEFAULT_IOU = 0.5

DetectionOutcome = Literal["all", "errors", "false_positives", "false_negatives"]
DETECTION_OUTCOMES: tuple[DetectionOutcome, ...] = ("all", "errors", "false_positives", "false_negatives")
DETECTION_OUTCOME_NAMES: dict[str, str] = {
    "all": "All test images",
    "errors": "With errors",
    "false_positives": "With false positives",
    "false_negatives": "With missed boxes",
}
BoxKind = Literal["truth", "correct", "false_positive", "missed"]


@dataclass(frozen=True)
class TrueBox:
    label: str
    left: float
    top: float
    width: float
    height: float
    missed: bool = False  # no correct prediction of its label overlaps it at the IoU threshold


@dataclass(frozen=True)
class PredictedBox:
    label: str
    confidence: float  # 0..1
    left: float
    top: float
    width: float
    height: float
    correct: bool


@dataclass(frozen=True)
class DrawnBox:
    """A box as the gallery draws it: in percent of the image, with its kind and caption."""

    kind: BoxKind
    label: str
    confidence: float | None
    x: float
    y: float
    w: float
    h: float

    @property
    def caption(self) -> str:
        what = {
            "truth": "true box",
            "correct": "correct",
            "false_positive": "false positive",
            "missed": "missed",
        }
        shown = f" {100 * self.confidence:.0f}%" if self.confidence is not None else ""
        return f"{self.label}{shown} ({what[self.kind]})"


@dataclass(frozen=True)
class DetectionImage:
    """One test image: its true boxes (each marked missed or not) and the predicted boxes."""

    image_id: str | None
    truth: tuple[TrueBox, ...]
    predicted: tuple[PredictedBox, ...]

    @property
    def false_positives(self) -> tuple[PredictedBox, ...]:
        return tuple(p for p in self.predicted if not p.correct)

    @property
    def missed(self) -> tuple[TrueBox, ...]:
        return tuple(t for t in self.truth if t.missed)

    @property
    def has_errors(self) -> bool:
        return bool(self.false_positives or self.missed)

    @property
    def true_labels(self) -> tuple[str, ...]:
        return tuple(sorted({t.label for t in self.truth}))

    def involves(self, label: str) -> bool:
        return any(t.label == label for t in self.truth) or any(p.label == label for p in self.predicted)

    def drawn(self) -> tuple[DrawnBox, ...]:
        """In drawing order: the found true boxes, the predictions (the most confident last), then the
        missed true boxes, dashed, on top (a wrong prediction often covers one)."""
        out = [_drawn("truth", t, None) for t in self.truth if not t.missed]
        for p in sorted(self.predicted, key=lambda p: p.confidence):
            out.append(_drawn("correct" if p.correct else "false_positive", p, p.confidence))
        out += [_drawn("missed", t, None) for t in self.missed]
        return tuple(out)


def _drawn(kind: BoxKind, b: TrueBox | PredictedBox, confidence: float | None) -> DrawnBox:
    return DrawnBox(kind, b.label, confidence, 100 * b.left, 100 * b.top, 100 * b.width, 100 * b.height)


@dataclass(frozen=True)
class DetectionLabel:
    label: str
    n_test_images: int  # TEST images with at least one of its boxes
    true_boxes: int
    ap: float | None
    threshold: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    reliable: bool
    false_positives: int  # its predictions at the threshold that matched no true box
    missed: int  # its true boxes no correct prediction found


@dataclass(frozen=True)
class DetectionEvaluation(EvaluationFacts[DetectionLabel]):
    labels: tuple[str, ...]
    n_images: int
    iou_threshold: float
    map50: float | None
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None
    threshold_source: str | None
    per_label: tuple[DetectionLabel, ...]
    images: tuple[DetectionImage, ...]
    warnings: tuple[str, ...]
    training: Mapping[str, object]


# --- reading the stored JSON ----------------------------------------------------------------------------


def is_detection(raw: Mapping[str, object] | None) -> bool:
    """Whether a stored evaluation is an object detector's."""
    return raw is not None and raw.get("task") == TASK


def _coords(m: Mapping[str, object]) -> tuple[float, float, float, float] | None:
    values = [_num(m.get(k)) for k in ("left", "top", "width", "height")]
    if any(v is None for v in values):
        return None
    left, top, width, height = (v or 0.0 for v in values)
    return left, top, width, height


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (left, top, width, height) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _image(m: Mapping[str, object], threshold: float) -> DetectionImage:
    predicted = []
    for p in _maps(m.get("predicted")):
        if (c := _coords(p)) is not None:
            confidence = _num(p.get("confidence")) or 0.0
            predicted.append(PredictedBox(str(p.get("label", "")), confidence, *c, p.get("correct") is True))
    found = [((p.left, p.top, p.width, p.height), p.label) for p in predicted if p.correct]
    truth = []
    for t in _maps(m.get("truth")):
        if (c := _coords(t)) is not None:
            label = str(t.get("label", ""))
            missed = not any(lab == label and iou(box, c) >= threshold for box, lab in found)
            truth.append(TrueBox(label, *c, missed))
    image_id = m.get("image_id")
    return DetectionImage(image_id if isinstance(image_id, str) else None, tuple(truth), tuple(predicted))


def _label(m: Mapping[str, object], images: Sequence[DetectionImage]) -> DetectionLabel:
    name = str(m.get("label", ""))
    n_images = _int(m.get("n_test_images"))
    reliable = m.get("reliable")
    return DetectionLabel(
        label=name,
        n_test_images=n_images,
        true_boxes=_int(m.get("true_boxes")),
        ap=_num(m.get("ap")),
        threshold=_num(m.get("threshold")),
        precision=_num(m.get("precision")),
        recall=_num(m.get("recall")),
        f1=_num(m.get("f1")),
        reliable=reliable if isinstance(reliable, bool) else n_images >= MIN_RELIABLE_TEST_IMAGES,
        false_positives=sum(p.label == name for i in images for p in i.false_positives),
        missed=sum(t.label == name for i in images for t in i.missed),
    )


def read_detection_evaluation(raw: Mapping[str, object] | None) -> DetectionEvaluation | None:
    """The detector's evaluation stored with a version, or None when there is none (or it is not a
    detector's)."""
    if raw is None or not is_detection(raw):
        return None
    threshold = _num(raw.get("iou_threshold")) or DEFAULT_IOU
    images = tuple(_image(m, threshold) for m in _maps(raw.get("images")))
    per_label = tuple(_label(m, images) for m in _maps(raw.get("per_label")))
    source = raw.get("threshold_source")
    return DetectionEvaluation(
        labels=_strs(raw.get("labels")) or tuple(r.label for r in per_label),
        n_images=_int(raw.get("n_images")) or len(images),
        iou_threshold=threshold,
        map50=_num(raw.get("map50")),
        macro_precision=_num(raw.get("macro_precision")),
        macro_recall=_num(raw.get("macro_recall")),
        macro_f1=_num(raw.get("macro_f1")),
        threshold_source=source if isinstance(source, str) else None,
        per_label=per_label,
        images=images,
        warnings=_strs(raw.get("warnings")),
        training=_map(raw.get("training")),
    )


# --- the gallery's filters ------------------------------------------------------------------------------


def filter_detection_images(
    images: Iterable[DetectionImage], outcome: str = "all", label: str = ""
) -> list[DetectionImage]:
    """The test images with this outcome; with ``label``, only those where the label is involved: a true
    or predicted box of it, or — for false positives / missed boxes — an error of that label."""
    found = []
    for image in images:
        fps = [p for p in image.false_positives if not label or p.label == label]
        missed = [t for t in image.missed if not label or t.label == label]
        if outcome == "false_positives":
            keep = bool(fps)
        elif outcome == "false_negatives":
            keep = bool(missed)
        elif outcome == "errors":
            keep = bool(fps or missed)
        else:
            keep = not label or image.involves(label)
        if keep:
            found.append(image)
    return found


def detection_outcome_counts(images: Sequence[DetectionImage], label: str = "") -> dict[str, int]:
    return {o: len(filter_detection_images(images, o, label)) for o in DETECTION_OUTCOMES}


# --- comparing two detectors ----------------------------------------------------------------------------


def _as_label_metrics(row: DetectionLabel | None) -> LabelMetrics | None:
    """A detector's label row in the shape the comparison table reads (no F1 interval: none is
    measured for detectors)."""
    if row is None:
        return None
    return LabelMetrics(
        row.label,
        row.n_test_images,
        row.threshold,
        row.precision,
        row.recall,
        row.f1,
        None,
        0,
        row.false_positives,
        row.missed,
    )


def compare_detections(a: DetectionEvaluation, b: DetectionEvaluation) -> Comparison:
    """Two detectors side by side: mAP@0.5, macro figures and the per-label ones (b − a)."""
    overall = (
        ("mAP@0.5", delta(a.map50, b.map50), "share"),
        ("Macro F1", delta(a.macro_f1, b.macro_f1), "share"),
        ("Macro precision", delta(a.macro_precision, b.macro_precision), "share"),
        ("Macro recall", delta(a.macro_recall, b.macro_recall), "share"),
        ("Test images", delta(float(a.n_images), float(b.n_images)), "count"),
    )
    rows_a = {r.label: r for r in a.per_label}
    rows_b = {r.label: r for r in b.per_label}
    rows = []
    for name in dict.fromkeys([*a.labels, *b.labels, *rows_a, *rows_b]):
        ra, rb = _as_label_metrics(rows_a.get(name)), _as_label_metrics(rows_b.get(name))
        rows.append(
            CompareRow(
                name,
                ra,
                rb,
                delta(ra.f1 if ra else None, rb.f1 if rb else None),
                delta(ra.precision if ra else None, rb.precision if rb else None),
                delta(ra.recall if ra else None, rb.recall if rb else None),
            )
        )
    same = a.image_ids == b.image_ids if a.image_ids and b.image_ids else None
    return Comparison(overall, tuple(rows), same)
