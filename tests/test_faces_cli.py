"""visionloop faces detect|compare: a table by default, --json for scripts, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import shared_dataset
from tests.factories import image_bytes
from visionloop.cli import cli

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "var"), "faces", *args])
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def test_detect_table_and_json(tmp_path: Path) -> None:
    photo = shared_dataset("faces") / "person_01" / "img1.jpg"
    blank = tmp_path / "blank.jpg"
    blank.write_bytes(image_bytes(200, 160))
    code, out = _run(tmp_path, "detect", str(photo), str(blank), "--attributes", "ALL")
    assert code == 0, out
    assert "EyesOpen True (" in out and "Gender Female (" in out and "blank.jpg: no face" in out
    code, out = _run(tmp_path, "detect", str(photo), "--json")
    assert code == 0, out
    [doc] = json.loads(out)
    assert doc["image"] == str(photo) and len(doc["faces"]) == 1 and len(doc["faces"][0]["landmarks"]) == 30


def test_compare(tmp_path: Path) -> None:
    folder = shared_dataset("faces")
    a1, a2, b = (
        folder / "person_01" / "img1.jpg",
        folder / "person_01" / "img2.jpg",
        folder / "person_03" / "img47.jpg",
    )
    code, out = _run(tmp_path, "compare", str(a1), str(a2))
    assert code == 0 and "yes" in out, out
    code, out = _run(tmp_path, "compare", str(a1), str(b), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["face_matches"] == [] and len(doc["unmatched_faces"]) == 1
    blank = tmp_path / "blank.jpg"
    blank.write_bytes(image_bytes(200, 160))
    code, out = _run(tmp_path, "compare", str(blank), str(a1))
    assert code != 0 and "no face in the source image" in out
    code, out = _run(tmp_path, "compare", str(a1), str(tmp_path / "missing.jpg"))
    assert code != 0 and "no such file" in out
    code, out = _run(tmp_path, "compare", str(a1), str(a2), "--similarity-threshold", "120")
    assert code != 0 and "similarity_threshold" in out
