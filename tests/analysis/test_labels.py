"""The labels analyser: merging ImageNet labels with COCO boxes over the hierarchy (unit), and real photos
(grocery produce, people) through the real models, loaded once per session."""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_dataset
from visionloop.analysis.hierarchy import load_hierarchy
from visionloop.analysis.labels import Detection, iou, merge_labels, one_name_per_object
from visionloop.core.records.analysis import BoundingBox
from visionloop.errors import InvalidImage

FOOD = {"Food", "Fruit", "Vegetable", "Produce"}


def test_iou() -> None:
    a = BoundingBox(0, 0, 0.5, 0.5)
    assert iou(a, a) == pytest.approx(1)
    assert iou(a, BoundingBox(0.5, 0.5, 0.5, 0.5)) == 0
    assert iou(a, BoundingBox(0.25, 0, 0.5, 0.5)) == pytest.approx(1 / 3)


def test_an_object_is_reported_under_one_name() -> None:
    box = BoundingBox(0.1, 0.1, 0.5, 0.5)
    dog = Detection(18, 0.9, box)
    cat = Detection(17, 0.6, BoundingBox(0.12, 0.1, 0.5, 0.5))  # the same animal, a second guess
    other_dog = Detection(18, 0.8, BoundingBox(0.6, 0.6, 0.3, 0.3))
    second_dog_same_place = Detection(18, 0.7, BoundingBox(0.11, 0.1, 0.5, 0.5))
    kept = one_name_per_object([cat, dog, other_dog, second_dog_same_place])
    assert [d.score for d in kept] == [0.9, 0.8, 0.7]  # the cat guess went; two dogs may overlap


def test_merge_sums_imagenet_mass_up_the_hierarchy_and_attaches_boxes() -> None:
    h = load_hierarchy()
    probs = np.zeros(1000)
    probs[h.imagenet.index("Banana")] = 0.5
    probs[h.imagenet.index("Lemon")] = 0.3
    probs[h.imagenet.index("Tench")] = 0.2
    detections = [
        Detection(52, 0.8, BoundingBox(0.1, 0.2, 0.3, 0.4)),
        Detection(52, 0.6, BoundingBox(0.5, 0.5, 0.2, 0.2)),
    ]
    labels = {x.name: x for x in merge_labels(h, probs, detections)}
    assert labels["Fruit"].confidence == pytest.approx(80)  # banana + lemon
    assert labels["Banana"].confidence == pytest.approx(80)  # its best box beats its 50 %
    assert [i.confidence for i in labels["Banana"].instances] == [80, 60]
    assert labels["Banana"].parents == ("Fruit", "Produce", "Food")
    assert labels["Food"].instances == () and labels["Lemon"].confidence == pytest.approx(30)
    assert labels["Animal"].confidence == pytest.approx(20)
    names = [x.name for x in merge_labels(h, probs, detections)]
    assert names == sorted(names, key=lambda n: (-labels[n].confidence, n))
    for x in labels.values():  # every parent of a reported label is reported, at least as sure
        assert all(p in labels and labels[p].confidence >= x.confidence - 1e-9 for p in x.parents)


def test_grocery_photos_get_a_fruit_in_the_top_five_with_food_parents(labels_analyser: Any) -> None:
    root = shared_dataset("grocery-produce")
    hits, seen = 0, []
    for fruit in ("Banana", "Lemon", "Orange", "Pineapple", "Pomegranate", "Apple"):
        for path in sorted((root / fruit).glob("*.jpg"))[:2]:
            top = labels_analyser.detect(path.read_bytes(), min_confidence=10).labels[:5]
            seen.append((path.name, [x.name for x in top]))
            fruits = [x for x in top if x.name == "Fruit" or "Fruit" in x.parents]
            hits += bool(fruits) and any(FOOD & set(x.parents) for x in fruits)
    assert hits >= 10, seen  # of 12 photos


def test_people_get_person_boxes_inside_the_image_surest_first(
    labels_analyser: Any, people_photo: bytes
) -> None:
    found = labels_analyser.detect(people_photo, min_confidence=50)
    person = next(x for x in found.labels if x.name == "Person")
    assert len(person.instances) >= 3 and person.confidence >= 90
    confidences = [i.confidence for i in person.instances]
    assert confidences == sorted(confidences, reverse=True) and person.confidence == confidences[0]
    for i in person.instances:
        b = i.box
        assert b.left >= 0 and b.top >= 0 and b.width > 0 and b.height > 0
        assert b.left + b.width <= 1 + 1e-6 and b.top + b.height <= 1 + 1e-6
    assert found.properties is None


def test_properties_only_and_threads(labels_analyser: Any) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (200, 150), (250, 250, 250)).save(buf, "PNG")
    only = labels_analyser.detect(buf.getvalue(), general_labels=False, image_properties=True)
    assert only.labels == () and only.properties is not None
    assert only.properties.quality.brightness > 95
    assert only.properties.dominant_colors[0].simplified_color == "white"
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(labels_analyser.detect(buf.getvalue())))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(r.labels == results[0].labels for r in results)


def test_bad_bytes_are_an_invalid_image(labels_analyser: Any) -> None:
    with pytest.raises(InvalidImage):
        labels_analyser.detect(b"\xff\xd8 not a jpeg")


def test_version_names_both_models(labels_analyser: Any) -> None:
    assert labels_analyser.kind == "labels"
    assert "efficientnet-lite0" in labels_analyser.version and "ssd-mobilenet-v2" in labels_analyser.version
