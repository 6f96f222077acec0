"""core.parameters on a real SQLite file: defaults, validation, history, events, workflow state."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.factories import make_project
from visionloop.core import events, parameters
from visionloop.core.events import EventType
from visionloop.core.records import parameters as records
from visionloop.core.records.parameters import PARAMETERS, Parameters
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "workflow.md"


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def svc(services: Services) -> Services:
    services.clock = Clock()
    make_project(services, "logos")
    return services


def test_a_new_project_has_the_defaults(svc: Services) -> None:
    got = parameters.get_parameters(svc, "logos")
    assert got == Parameters()
    assert got.to_dict() == {p.key: p.default for p in PARAMETERS}
    assert parameters.parameter_history(svc, "logos") == []


def test_the_spec_table_and_the_dataclass_agree() -> None:
    assert list(Parameters().to_dict()) == [p.key for p in PARAMETERS]
    for p in PARAMETERS:
        assert type(getattr(Parameters(), p.key)) is p.type, p.key
        if p.type is not bool:
            assert p.minimum is not None and p.maximum is not None
            assert p.minimum <= p.default <= p.maximum


def test_every_parameter_is_documented_with_its_range_and_default() -> None:
    text = DOCS.read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line for line in text.splitlines() if line.startswith("| `")
    }
    for p in PARAMETERS:
        assert p.key in rows, f"{p.key} is not in docs/workflow.md"
        cells = [c.strip() for c in rows[p.key].split("|")]
        default = str(p.default).lower() if p.type is bool else records._num(p.default)
        assert cells[3] == default, p.key
        if p.type is not bool:
            assert f"{records._num(p.minimum)}–{records._num(p.maximum)}" in cells[2], p.key


def test_a_change_is_stored_recorded_and_published(svc: Services) -> None:
    seen: list[events.Event] = []
    svc.bus.subscribe(seen.append, [EventType.PARAMETER_CHANGED])
    done = parameters.update_parameters(
        svc, "logos", {"min_confidence": 70, "human_review_enabled": True, "min_f1": 0.8}, changed_by="ann"
    )
    assert done.parameters.min_confidence == 70.0 and isinstance(done.parameters.min_confidence, float)
    assert done.parameters.human_review_enabled is True
    # min_f1 was already 0.8 (the default): not a change
    assert [(c.key, c.old, c.new, c.changed_by) for c in done.changes] == [
        ("min_confidence", 50.0, 70.0, "ann"),
        ("human_review_enabled", False, True, "ann"),
    ]
    assert all(c.changed_at == T0 for c in done.changes)
    assert [e.payload for e in seen] == [
        {"key": "min_confidence", "old": 50.0, "new": 70.0, "changed_by": "ann"},
        {"key": "human_review_enabled", "old": False, "new": True, "changed_by": "ann"},
    ]
    stored = events.list_events(svc, "logos", type="parameter_changed")
    assert [e.id for e in stored] == [e.id for e in seen]

    svc.clock.at = T0 + timedelta(hours=1)  # type: ignore[attr-defined]
    parameters.update_parameters(svc, "logos", {"min_confidence": 65.5}, changed_by="bob")
    history = parameters.parameter_history(svc, "logos")
    assert [(c.key, c.old, c.new, c.changed_by) for c in history] == [
        ("min_confidence", 70.0, 65.5, "bob"),
        ("human_review_enabled", False, True, "ann"),
        ("min_confidence", 50.0, 70.0, "ann"),
    ]
    assert history[0].changed_at == T0 + timedelta(hours=1)
    only = parameters.parameter_history(svc, "logos", key="human_review_enabled")
    assert [c.new for c in only] == [True]
    assert len(parameters.parameter_history(svc, "logos", offset=1, limit=1)) == 1
    assert parameters.get_parameters(svc, "logos").min_confidence == 65.5


def test_setting_the_same_value_again_changes_nothing(svc: Services) -> None:
    parameters.update_parameters(svc, "logos", {"training_poll_minutes": 15}, changed_by="a")
    again = parameters.update_parameters(svc, "logos", {"training_poll_minutes": 15.0}, changed_by="a")
    assert again.changes == ()
    assert len(parameters.parameter_history(svc, "logos")) == 1
    assert len(events.list_events(svc, "logos")) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_confidence": 101}, "min_confidence must be a number from 0 to 100, not 101"),
        ({"min_confidence": -0.5}, "min_confidence must be a number from 0 to 100"),
        ({"min_confidence": "70"}, 'min_confidence must be a number from 0 to 100, not "70"'),
        ({"min_confidence": float("nan")}, "min_confidence must be a number"),
        ({"min_confidence": None}, "min_confidence must be a number from 0 to 100, not null"),
        ({"min_f1": 1.5}, "min_f1 must be a number from 0 to 1"),
        ({"min_f1": True}, "min_f1 must be a number from 0 to 1, not true"),
        ({"human_review_enabled": 1}, "human_review_enabled must be true or false, not 1"),
        ({"human_review_enabled": "yes"}, "human_review_enabled must be true or false"),
        ({"training_poll_minutes": 0}, "training_poll_minutes must be an integer from 1 to 10080"),
        ({"training_poll_minutes": 2.5}, "training_poll_minutes must be an integer"),
        ({"min_inference_units": 33}, "min_inference_units must be an integer from 1 to 32"),
        (
            {"human_sampling_interval": [3]},
            "human_sampling_interval must be an integer from 1 to 1000000, not list",
        ),
        ({"nope": 1}, "unknown parameter 'nope': use one of min_confidence,"),
        ({}, "no parameter given"),
    ],
)
def test_bad_values_are_refused_naming_the_key(svc: Services, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match="^" + _escape(message)):
        parameters.update_parameters(svc, "logos", changes, changed_by="a")


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_one_bad_key_changes_nothing_and_every_bad_key_is_named(svc: Services) -> None:
    with pytest.raises(InvalidInput) as caught:
        parameters.update_parameters(
            svc, "logos", {"min_confidence": 60, "min_f1": 2, "bogus": True}, changed_by="a"
        )
    assert set(caught.value.details["errors"]) == {"min_f1", "bogus"}
    assert "min_f1" in caught.value.message and "bogus" in caught.value.message
    assert parameters.get_parameters(svc, "logos") == Parameters()
    assert parameters.parameter_history(svc, "logos") == [] and events.list_events(svc, "logos") == []


def test_integral_floats_are_integers(svc: Services) -> None:
    done = parameters.update_parameters(svc, "logos", {"min_untrained_images": 20.0}, changed_by="a")
    assert done.parameters.min_untrained_images == 20 and isinstance(
        done.parameters.min_untrained_images, int
    )


def test_unknown_project_and_bad_arguments(svc: Services) -> None:
    with pytest.raises(NotFound):
        parameters.get_parameters(svc, "nope")
    with pytest.raises(NotFound):
        parameters.update_parameters(svc, "nope", {"min_f1": 0.5}, changed_by="a")
    with pytest.raises(InvalidInput, match="changed_by"):
        parameters.update_parameters(svc, "logos", {"min_f1": 0.5}, changed_by="")
    with pytest.raises(InvalidInput, match="unknown parameter"):
        parameters.parameter_history(svc, "logos", key="nope")
    with pytest.raises(InvalidInput, match="limit"):
        parameters.parameter_history(svc, "logos", limit=0)
    with pytest.raises(InvalidInput, match="object"):
        parameters.check_changes([("min_f1", 0.5)])


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("human_review_enabled", "true", True),
        ("human_review_enabled", "Off", False),
        ("human_review_enabled", "1", True),
        ("min_confidence", "70", 70.0),
        ("min_confidence", "70.5", 70.5),
        ("training_poll_minutes", "15", 15),
        ("min_f1", "0.9", 0.9),
    ],
)
def test_parse_value(key: str, text: str, value: object) -> None:
    got = parameters.parse_value(key, text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("human_review_enabled", "maybe", 'human_review_enabled must be true or false, not "maybe"'),
        ("min_confidence", "high", 'min_confidence must be a number from 0 to 100, not "high"'),
        ("training_poll_minutes", "1.5", "training_poll_minutes must be an integer"),
        ("min_confidence", "nan", "min_confidence must be a number"),
        ("nope", "1", "unknown parameter 'nope'"),
    ],
)
def test_parse_value_refuses(key: str, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=_escape(message)):
        parameters.parse_value(key, text)


def test_a_stored_value_out_of_range_falls_back_to_the_default(svc: Services) -> None:
    project = svc.repo.get_project("logos")
    svc.repo.update_parameter_values(project.id, {"min_f1": 7, "retired_key": 1}, {}, "migration", T0)
    assert parameters.get_parameters(svc, "logos") == Parameters()


def test_projects_are_apart_and_deleting_a_project_deletes_its_parameters(svc: Services) -> None:
    make_project(svc, "other")
    parameters.update_parameters(svc, "logos", {"min_f1": 0.5}, changed_by="a")
    assert parameters.get_parameters(svc, "other").min_f1 == 0.8
    from visionloop.core.projects import delete_project

    delete_project(svc, "logos")
    make_project(svc, "logos")
    assert parameters.get_parameters(svc, "logos") == Parameters()
    assert parameters.parameter_history(svc, "logos") == []


def test_workflow_state_is_separate_and_written_whole(svc: Services) -> None:
    assert parameters.get_state(svc, "logos") == {}
    parameters.set_state(svc, "logos", {"last_training.images": 10, "last_sampled": {"id": 3}})
    parameters.set_state(svc, "logos", {"last_sampled": None, "runs:last": "r1"})
    assert parameters.get_state(svc, "logos") == {"last_training.images": 10, "runs:last": "r1"}
    assert parameters.get_parameters(svc, "logos") == Parameters()  # not a parameter
    with pytest.raises(InvalidInput, match="workflow state key"):
        parameters.set_state(svc, "logos", {"Bad Key": 1})
    with pytest.raises(InvalidInput, match="must be JSON"):
        parameters.set_state(svc, "logos", {"x": object()})
    with pytest.raises(NotFound):
        parameters.set_state(svc, "nope", {"x": 1})


def test_update_state_is_atomic_across_threads(svc: Services) -> None:
    def bump() -> None:
        for _ in range(10):
            parameters.update_state(svc, "logos", lambda s: {"count": int(s.get("count", 0)) + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert parameters.get_state(svc, "logos")["count"] == 40


def test_a_failing_update_writes_nothing(svc: Services) -> None:
    parameters.set_state(svc, "logos", {"a": 1})

    def boom(state: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        parameters.update_state(svc, "logos", boom)
    with pytest.raises(InvalidInput):
        parameters.update_state(svc, "logos", lambda s: {"a": 2, "b": float("inf")})
    assert parameters.get_state(svc, "logos") == {"a": 1}
