"""FCOS target assignment and decoding on boxes whose locations are worked out by hand."""

from __future__ import annotations

import numpy as np

from visionloop.core.entities import Box
from visionloop.engines.detection.decode import decode, nms
from visionloop.engines.detection.recipe import DetectorRecipe
from visionloop.engines.detection.targets import assign, grid

SIZE = 256
RANGES = (0.0, 64.0, 128.0)


def test_a_box_is_learnt_by_the_level_that_suits_its_size_near_its_centre() -> None:
    g = grid(SIZE, RANGES)  # 32² locations at stride 8, 16² at 16, 8² at 32
    assert len(g.strides) == 32 * 32 + 16 * 16 + 8 * 8
    small = Box("a", 96 / SIZE, 96 / SIZE, 40 / SIZE, 40 / SIZE)  # extent ≤ 40 px: stride 8
    large = Box("b", 0.0, 0.0, 1.0, 1.0)  # extent ~128 px at the centre: stride 32
    t = assign([small, large], ("a", "b"), g, SIZE, radius=1.5)
    assert set(g.strides[t.index[t.label == 0]]) == {8.0}
    assert set(g.strides[t.index[t.label == 1]]) == {32.0}
    # the small box wins where both boxes cover a location of its level; its centre is at 116 px
    centres = g.centers[t.index[t.label == 0]]
    assert np.all(np.abs(centres - 116) < 1.5 * 8)
    d = t.distances[t.label == 0]
    np.testing.assert_allclose(d[:, 0] + d[:, 2], 40, atol=1e-4)  # l + r = the box width


def test_a_tiny_box_between_centres_still_gets_one_location_and_unknown_labels_none() -> None:
    g = grid(SIZE, RANGES)
    tiny = Box("a", 8.5 / SIZE, 8.5 / SIZE, 3 / SIZE, 3 / SIZE)
    t = assign([tiny, Box("other", 0.1, 0.1, 0.2, 0.2)], ("a",), g, SIZE, radius=1.5)
    assert len(t.index) == 1 and t.label.tolist() == [0] and g.strides[t.index[0]] == 8
    assert len(assign([], ("a",), g, SIZE, radius=1.5).index) == 0


def test_nms_keeps_the_best_of_overlapping_boxes_per_class_and_decode_gives_ratios() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.5).tolist() == [1, 2]
    recipe = DetectorRecipe(labels=("a", "b"), input_size=SIZE)
    g = grid(SIZE, RANGES)
    scores = np.zeros((len(g.strides), 2), np.float32)
    distances = np.full((len(g.strides), 4), 16.0, np.float32)
    scores[0, 0] = 0.9  # the first location (4, 4): a box of −12..20 px, clipped to 0..20
    scores[0, 1] = 0.6  # the same box for another class survives per-class NMS
    scores[1, 0] = 0.8  # a neighbour 8 px right overlaps the first (IoU > 0.5) and is suppressed
    found = decode(scores, distances, g, recipe)
    assert [(d.label, round(d.confidence, 2)) for d in found] == [("a", 0.9), ("b", 0.6)]
    assert found[0].box.left == 0 and abs(found[0].box.width - 20 / SIZE) < 1e-6
