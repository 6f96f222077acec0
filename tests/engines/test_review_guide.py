"""The review guide: what a min_confidence rule catches, and the setting it suggests."""

import numpy as np
import pytest

from visionloop.engines.review_guide import LEVELS, review_guide
from visionloop.errors import InvalidInput


def test_shares_at_each_level_and_the_suggested_setting() -> None:
    confidence = [0.9, 0.6, 0.75, 0.95, 0.55, 0.85, 0.99, 0.7]
    correct = [True, False, False, True, False, True, True, True]
    guide = review_guide(confidence, correct)
    assert guide is not None
    assert (guide["images"], guide["wrong"], guide["few_wrong"]) == (8, 3, True)
    at = {row["min_confidence"]: row for row in guide["levels"]}
    assert list(at) == list(LEVELS)
    # below 70 %: the wrong answers at 55 % and 60 % (the one at 70 % is not below), nothing right
    assert at[70]["wrong_caught"] == pytest.approx(2 / 3, abs=1e-4)
    assert at[70]["sent"] == pytest.approx(2 / 8)
    assert at[80]["wrong_caught"] == 1.0 and at[80]["sent"] == pytest.approx(4 / 8)
    # 80 % of 3 wrong answers is 3 of them: the setting must be above 75 %, the highest
    assert guide["suggested"] == {"min_confidence": 76, "wrong_caught": 1.0, "sent": 0.5}


def test_the_suggestion_is_the_lowest_setting_that_reaches_the_target() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 400)
    correct = rng.random(400) < confidence  # calibrated by construction
    guide = review_guide(confidence, correct, target=0.8)
    assert guide is not None and not guide["few_wrong"]
    level = guide["suggested"]["min_confidence"]
    wrong = ~correct
    assert (confidence[wrong] * 100 < level).mean() >= 0.8
    assert (confidence[wrong] * 100 < level - 1).mean() < 0.8
    assert guide["suggested"]["sent"] == pytest.approx((confidence * 100 < level).mean(), abs=1e-4)


def test_no_wrong_answers_no_suggestion_and_no_images_no_guide() -> None:
    guide = review_guide([0.9, 0.8], [True, True])
    assert guide is not None and guide["suggested"] is None and guide["wrong"] == 0
    assert all(row["wrong_caught"] is None for row in guide["levels"])
    assert review_guide([], []) is None


def test_wrong_answers_at_full_confidence_cannot_all_be_caught() -> None:
    guide = review_guide([1.0, 1.0, 0.6], [False, False, True])
    assert guide is not None
    assert guide["suggested"]["min_confidence"] == 100
    assert guide["suggested"]["wrong_caught"] == 0.0  # said as it is, not rounded up to the target


@pytest.mark.parametrize(
    ("confidence", "correct", "target"),
    [([0.5, 0.6], [True], 0.8), ([1.2], [True], 0.8), ([float("nan")], [True], 0.8), ([0.5], [True], 0.0)],
)
def test_bad_input_is_refused(confidence: list[float], correct: list[bool], target: float) -> None:
    with pytest.raises(InvalidInput):
        review_guide(confidence, correct, target)
