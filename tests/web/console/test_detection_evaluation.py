"""The console's reader of a detector's stored evaluation (web.console.detection_evaluation) on
hand-written JSON: missed boxes worked out at the stored IoU, the gallery's filters and counts, the
drawing order, the comparison of two detectors, and junk read as empty rather than as an error."""

from __future__ import annotations

from typing import Any

from visionloop.web.console.detection_evaluation import (
    DetectionImage,
    compare_detections,
    detection_outcome_counts,
    filter_detection_images,
    iou,
    is_detection,
    read_detection_evaluation,
)


def box(
    label: str, left: float, top: float, width: float = 0.2, height: float = 0.2, **more: Any
) -> dict[str, Any]:
    return {"label": label, "left": left, "top": top, "width": width, "height": height, **more}


def evaluation(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "task": "object_detection",
        "labels": ["cat", "dog"],
        "n_images": 3,
        "iou_threshold": 0.5,
        "map50": 0.61,
        "macro_precision": 0.7,
        "macro_recall": 0.6,
        "macro_f1": 0.64,
        "threshold_source": "test",
        "per_label": [
            {
                "label": "cat",
                "n_test_images": 2,
                "true_boxes": 3,
                "ap": 0.7,
                "threshold": 0.42,
                "precision": 0.8,
                "recall": 0.7,
                "f1": 0.74,
                "reliable": False,
            },
            {
                "label": "dog",
                "n_test_images": 6,
                "true_boxes": 6,
                "ap": 0.5,
                "threshold": 0.3,
                "precision": 0.6,
                "recall": 0.5,
                "f1": 0.55,
                "reliable": True,
            },
        ],
        "images": [
            {  # right: the cat found
                "image_id": "a" * 64,
                "truth": [box("cat", 0.1, 0.1)],
                "predicted": [box("cat", 0.11, 0.1, confidence=0.9, correct=True)],
            },
            {  # a dog taken for a cat: a false positive and a missed dog; a second cat missed
                "image_id": "b" * 64,
                "truth": [box("dog", 0.5, 0.5), box("cat", 0.0, 0.0)],
                "predicted": [box("cat", 0.5, 0.5, confidence=0.8, correct=False)],
            },
            {  # a correct dog that overlaps its truth by less than half would not count: here it does
                "image_id": "c" * 64,
                "truth": [box("dog", 0.2, 0.2)],
                "predicted": [box("dog", 0.25, 0.2, confidence=0.6, correct=True)],
            },
        ],
        "warnings": [
            "the TEST set is small (3 images)",
            "label 'cat' has only 2 test images; its F1 is not reliable",
        ],
        "training": {"images": 80, "views": 160, "epochs": 60.0, "steps": 1200, "final_loss": 0.4},
    }
    doc.update(changes)
    return doc


def test_reads_the_stored_shape() -> None:
    ev = read_detection_evaluation(evaluation())
    assert ev is not None and is_detection(evaluation())
    assert (ev.map50, ev.macro_f1, ev.n_images, ev.iou_threshold) == (0.61, 0.64, 3, 0.5)
    assert [r.label for r in ev.unreliable] == ["cat"] and ev.thresholds_from_test
    assert ev.test_set_warnings == ("the TEST set is small (3 images)",)
    assert ev.image_ids == {"a" * 64, "b" * 64, "c" * 64}
    right, mixed, dog = ev.images
    assert not right.has_errors and not dog.has_errors
    assert [t.label for t in mixed.missed] == ["dog", "cat"] and [p.label for p in mixed.false_positives] == [
        "cat"
    ]
    cat, dog_row = ev.per_label
    assert (cat.false_positives, cat.missed, dog_row.false_positives, dog_row.missed) == (1, 1, 0, 1)
    # drawing order: found true boxes, predictions, then missed boxes on top; in percent
    assert [b.kind for b in mixed.drawn()] == ["false_positive", "missed", "missed"]
    assert [b.kind for b in right.drawn()] == ["truth", "correct"]
    fp = mixed.drawn()[0]
    assert (fp.x, fp.y, fp.w, fp.h) == (50.0, 50.0, 20.0, 20.0) and fp.caption == "cat 80% (false positive)"
    assert mixed.drawn()[1].caption == "dog (missed)"


def test_filters_and_counts() -> None:
    ev = read_detection_evaluation(evaluation())
    assert ev is not None

    def ids(images: list[DetectionImage]) -> list[str]:
        return [i.image_id[0] for i in images if i.image_id]

    assert ids(filter_detection_images(ev.images, "errors")) == ["b"]
    assert ids(filter_detection_images(ev.images, "false_positives", "dog")) == []
    assert ids(filter_detection_images(ev.images, "false_negatives", "dog")) == ["b"]
    assert ids(filter_detection_images(ev.images, "all", "dog")) == ["b", "c"]
    assert detection_outcome_counts(ev.images) == {
        "all": 3,
        "errors": 1,
        "false_positives": 1,
        "false_negatives": 1,
    }
    assert detection_outcome_counts(ev.images, "cat")["false_positives"] == 1


def test_missed_is_worked_out_at_the_stored_iou() -> None:
    # the correct dog overlaps its true box at IoU 0.6: found at 0.5, missed if the threshold were 0.7
    assert round(iou((0.2, 0.2, 0.2, 0.2), (0.25, 0.2, 0.2, 0.2)), 2) == 0.6
    strict = read_detection_evaluation(evaluation(iou_threshold=0.7))
    assert strict is not None and [t.label for t in strict.images[2].missed] == ["dog"]


def test_junk_reads_as_empty() -> None:
    assert read_detection_evaluation(None) is None and read_detection_evaluation({"accuracy": 0.9}) is None
    assert not is_detection({"task": "classification"})
    ev = read_detection_evaluation(
        evaluation(
            map50=None,
            per_label="nope",
            images=[{"truth": [{"label": "cat"}], "predicted": None}, 7],
            training=None,
            n_images=None,
            labels=None,
        )
    )
    assert ev is not None and ev.map50 is None and ev.per_label == () and ev.labels == ()
    assert (
        ev.n_images == 1 and ev.images[0].truth == () and ev.images[0].image_id is None and ev.training == {}
    )


def test_comparing_two_detectors() -> None:
    a = read_detection_evaluation(evaluation())
    b = read_detection_evaluation(evaluation(map50=0.7, per_label=evaluation()["per_label"][:1], images=[]))
    assert a is not None and b is not None
    c = compare_detections(a, b)
    assert c.overall[0][0] == "mAP@0.5" and round(c.overall[0][1].change or 0, 2) == 0.09
    assert [r.label for r in c.labels] == ["cat", "dog"] and c.labels[1].b is None
    assert c.same_test_set is None  # b names no test image
