"""The percent filter: one scale for every confidence a person reads, and never "equal" when not."""

from __future__ import annotations

import pytest

from visionloop.web.numbers import percent
from visionloop.web.pages import _env


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (0.974, {}, "97.4%"),
        (None, {}, "–"),
        (0.5, {"digits": 0}, "50%"),
        (97.4, {"scale": 100}, "97.4%"),
        (0.9996, {"beside": 0.9997}, "99.96%"),
        (0.9997, {"beside": 0.9996}, "99.97%"),
        (99.96, {"scale": 100, "beside": 99.97}, "99.96%"),
        (1.0, {"beside": 1.0}, "100.0%"),  # equal values stay short
        (0.973, {"beside": 0.5}, "97.3%"),  # far apart: the usual digits
        (0.4999996, {"beside": 0.5}, "49.9999%"),  # below, past the digits shown: rounded down
        (0.5, {"beside": 0.4999996}, "50.0000%"),
    ],
)
def test_percent(value: float | None, kwargs: dict[str, float], text: str) -> None:
    assert percent(value, **kwargs) == text  # type: ignore[arg-type]


def test_a_value_below_its_threshold_never_reads_as_reaching_it() -> None:
    for i in range(1, 2000):
        threshold = i / 2000
        for below in (threshold - 1e-3, threshold - 1e-5, threshold - 1e-7):
            shown, limit = percent(below, beside=threshold), percent(threshold, beside=below)
            assert float(shown[:-1]) < float(limit[:-1]), (below, threshold, shown, limit)


def test_templates_have_the_filter() -> None:
    html = _env.from_string("{{ 0.5 | percent }} {{ 99.5 | percent(scale=100, beside=99.52) }}").render()
    assert html == "50.0% 99.50%"
