"""The lines ListDatasetEntries answers for entries whose labels the product changed after import: the
user's attribute names stay, a label that still holds keeps its attribute as given, new labels take freed
names (else new ones beside), and the line's own fields are never dropped."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from visionloop.core.entities import DatasetEntry, EntrySource, TaskType
from visionloop.core.entry_lines import RAW_LINE_ATTRIBUTE, entry_line, rejected_line
from visionloop.core.records.rejected_lines import LineError, RejectedLine

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _attr(label: str, job: str = "theirs") -> dict[str, Any]:
    return {"class-name": label, "confidence": 1, "type": "groundtruth/image-classification", "job-name": job}


GIVEN = {
    "source-ref": "s3://bkt/1.jpg",
    "sport0": 0,
    "sport0-metadata": _attr("football"),
    "sport1": 0,
    "sport1-metadata": _attr("ball"),
    "shot": {"camera": "a"},
}


def _entry(
    labels: tuple[str, ...], line: dict[str, Any] | str = GIVEN, group: str | None = None
) -> DatasetEntry:
    text = line if isinstance(line, str) else json.dumps(line)
    return DatasetEntry(
        1, 1, "0" * 64, "s3://bkt/1.jpg", "JPEG", 100, 80, 1, labels, (), EntrySource.IMPORT, NOW,
        group=group, manifest_line=text,
    )  # fmt: skip


def test_an_unchanged_entry_answers_its_line_as_given() -> None:
    line = entry_line(_entry(("football", "ball")), TaskType.MULTI_LABEL, "ours")
    assert line == {**GIVEN, "cl-metadata": {"is_labeled": True}}


def test_a_changed_label_takes_the_freed_attribute_and_the_kept_one_stays_as_given() -> None:
    line = entry_line(_entry(("football", "tennis")), TaskType.MULTI_LABEL, "ours")
    assert line["sport0-metadata"] == _attr("football")  # as given, their job name too
    assert line["sport1-metadata"]["class-name"] == "tennis" and line["shot"] == {"camera": "a"}
    assert line["cl-metadata"] == {"is_labeled": True}
    more = entry_line(_entry(("football", "ball", "net")), TaskType.MULTI_LABEL, "ours")
    added = [k for k in more if k.endswith("-metadata") and k not in GIVEN and k != "cl-metadata"]
    assert len(added) == 1 and more[added[0]]["class-name"] == "net"
    assert more["sport1-metadata"] == _attr("ball")
    cleared = entry_line(_entry(()), TaskType.MULTI_LABEL, "ours")
    assert cleared == {
        "source-ref": "s3://bkt/1.jpg",
        "shot": {"camera": "a"},
        "cl-metadata": {"is_labeled": False},
    }


def test_a_changed_group_is_answered_and_an_unreadable_stored_line_is_written_again() -> None:
    grouped = entry_line(_entry(("football", "ball"), group="series-2"), TaskType.MULTI_LABEL, "ours")
    assert grouped["visionloop-group"] == "series-2" and grouped["sport0-metadata"] == _attr("football")
    broken = entry_line(_entry(("apple",), line="{not json"), TaskType.CLASSIFICATION, "ours")
    assert broken["source-ref"] == "s3://bkt/1.jpg" and "not json" not in json.dumps(broken)
    (meta,) = [v for k, v in broken.items() if k.endswith("-metadata") and k != "cl-metadata"]
    assert meta["class-name"] == "apple" and meta["job-name"] == "ours"
    written = entry_line(replace(_entry(("apple",)), manifest_line=None), TaskType.CLASSIFICATION, "ours")
    assert json.dumps(written) == json.dumps(broken)


def test_a_rejected_line_is_answered_as_given_with_its_errors() -> None:
    errors = (LineError("ERROR_INVALID_IMAGE", "not an image"),)
    given = json.dumps({"source-ref": "s3://bkt/2.jpg", "sport0": 0, "sport0-metadata": _attr("x")})
    line = rejected_line(RejectedLine(1, 1, "s3://bkt/2.jpg", given, errors, NOW))
    assert line == {
        **json.loads(given),
        "errors": [{"code": "ERROR_INVALID_IMAGE", "message": "not an image"}],
        "cl-metadata": {"is_labeled": True},
    }
    wrapped = rejected_line(RejectedLine(2, 1, None, "[1, 2]", errors, NOW))
    assert wrapped[RAW_LINE_ATTRIBUTE] == "[1, 2]" and wrapped["cl-metadata"] == {"is_labeled": False}
