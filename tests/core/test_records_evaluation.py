"""The evaluation records the engine and the console share (core/records/evaluation.py)."""

from __future__ import annotations

from visionloop.core.records.evaluation import ConfusionMatrix, Interval, LabelMetrics, ReliabilityBin
from visionloop.engines.metrics import to_jsonable


def test_interval_contains_its_bounds() -> None:
    interval = Interval(0.7, 0.9)
    assert interval.contains(0.7) and interval.contains(0.9) and interval.contains(0.8)
    assert not interval.contains(0.69) and not interval.contains(0.91)
    assert interval.to_dict() == {"lower": 0.7, "upper": 0.9} == to_jsonable(interval)


def test_label_metrics_reliable_from_five_test_images() -> None:
    def row(n: int, interval: Interval | None) -> LabelMetrics:
        return LabelMetrics("a", n, 0.5, 1.0, 0.5, 2 / 3, interval, 2, 0, 2)

    assert not row(4, None).reliable and row(5, None).reliable
    for metrics in (row(4, None), row(5, Interval(0.1, 0.9))):
        assert metrics.to_dict() == dict(to_jsonable(metrics), reliable=metrics.reliable)


def test_to_dict_is_the_stored_json() -> None:
    confusion = ConfusionMatrix(("a", "b"), ((2, 1), (0, 3)), ((2 / 3, 1 / 3), (0.0, 1.0)), "top1")
    assert confusion.to_dict() == to_jsonable(confusion)
    empty = ReliabilityBin(0.0, 0.1, 0, None, None)
    assert empty.to_dict() == to_jsonable(empty)
