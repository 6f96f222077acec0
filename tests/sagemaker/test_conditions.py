"""The activation conditions of DetectModerationLabels' human loops (sagemaker/conditions.py): what parse
accepts and refuses, and how evaluate decides (comparisons, "*", And/Or, Sampling the same way each time)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from visionloop.sagemaker import conditions


def check(name: str, **compare: float) -> dict[str, Any]:
    return {
        "ConditionType": "ModerationLabelConfidenceCheck",
        "ConditionParameters": {"ModerationLabelName": name, **compare},
    }


def sample(percent: float) -> dict[str, Any]:
    return {"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": percent}}


def doc(*conds: dict[str, Any]) -> dict[str, Any]:
    return conditions.parse(json.dumps({"Conditions": list(conds)}))


LABELS = [("Explicit", 91.5), ("Explicit Nudity", 91.5), ("Swimwear or Underwear", 40.0)]


@pytest.mark.parametrize(
    ("condition", "held"),
    [
        (check("Explicit", ConfidenceLessThan=95), True),
        (check("Explicit", ConfidenceLessThan=91.5), False),
        (check("Explicit", ConfidenceLessThanEquals=91.5), True),
        (check("Explicit", ConfidenceGreaterThan=50, ConfidenceLessThan=90), False),  # every comparison
        (check("Explicit", ConfidenceEquals=91.5), True),
        (check("explicit", ConfidenceGreaterThanEquals=0), False),  # the name is case-sensitive
        (check("*", ConfidenceLessThan=50), True),  # Swimwear or Underwear at 40
        (check("Violence", ConfidenceGreaterThanEquals=0), False),  # not in the answer
        ({"And": [check("Explicit", ConfidenceLessThan=95), check("*", ConfidenceLessThan=30)]}, False),
        ({"Or": [check("Explicit", ConfidenceLessThan=50), check("*", ConfidenceLessThan=50)]}, True),
        (sample(100), True),
        (sample(0), False),
    ],
)
def test_evaluate(condition: dict[str, Any], held: bool) -> None:
    found = conditions.evaluate(doc(condition), LABELS, "flow|image")
    assert found.activated is held
    assert found.results["Conditions"][0]["EvaluationResult"] is held


def test_top_level_conditions_are_ored_and_results_nest() -> None:
    found = conditions.evaluate(
        doc(
            check("Violence", ConfidenceGreaterThan=0),
            {"And": [sample(100), check("*", ConfidenceLessThan=50)]},
        ),
        LABELS,
        "k",
    )
    assert found.activated
    first, second = found.results["Conditions"]
    assert (
        first["EvaluationResult"] is False
        and first["ConditionParameters"]["ModerationLabelName"] == "Violence"
    )
    assert [c["EvaluationResult"] for c in second["And"]] == [True, True] and second[
        "EvaluationResult"
    ] is True


def test_sampling_decides_the_same_way_for_the_same_key() -> None:
    half = doc(sample(50))
    decisions = [conditions.evaluate(half, [], f"flow|image-{i}").activated for i in range(400)]
    assert decisions == [conditions.evaluate(half, [], f"flow|image-{i}").activated for i in range(400)]
    assert 150 < sum(decisions) < 250  # about half


def test_label_names() -> None:
    d = doc(check("Suggestive", ConfidenceLessThan=90), {"Or": [check("*", ConfidenceLessThan=5), sample(1)]})
    assert conditions.label_names(d) == ["Suggestive", "*"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not a JSON document"),
        ("[]", '{"Conditions"'),
        ('{"Conditions": []}', '{"Conditions"'),
        (
            json.dumps(
                {
                    "Conditions": [
                        {"ConditionType": "ImportantFormKeyConfidenceCheck", "ConditionParameters": {}}
                    ]
                }
            ),
            "ConditionType",
        ),
        (json.dumps({"Conditions": [check("")]}), "ModerationLabelName"),
        (json.dumps({"Conditions": [check("Explicit")]}), "needs one of"),
        (json.dumps({"Conditions": [check("Explicit", ConfidenceLessThan=101)]}), "from 0 to 100"),
        (
            json.dumps(
                {
                    "Conditions": [
                        {
                            **check("Explicit", ConfidenceLessThan=1),
                            "ConditionParameters": {
                                "ModerationLabelName": "x",
                                "ConfidenceLessThan": 1,
                                "Other": 2,
                            },
                        }
                    ]
                }
            ),
            "unknown members: Other",
        ),
        (json.dumps({"Conditions": [sample(-1)]}), "RandomSamplingPercentage"),
        (json.dumps({"Conditions": [{"And": []}]}), "'And'"),
        (json.dumps({"Conditions": [{"Or": [sample(1)], "And": [sample(1)]}]}), "nothing else"),
        (json.dumps({"Conditions": [{"ConditionType": "Sampling"}]}), "ConditionParameters"),
    ],
)
def test_parse_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=None) as e:
        conditions.parse(text)
    assert reason in str(e.value)


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = sample(1)
    for _ in range(conditions.MAX_DEPTH):
        deep = {"And": [deep]}
    with pytest.raises(ValueError, match="nested at most"):
        conditions.parse(json.dumps({"Conditions": [deep]}))
