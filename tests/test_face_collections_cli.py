"""visionloop faces collection|index|list|search|delete|user with the real face models on the faces
dataset: tables by default, --json for scripts, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import shared_dataset
from visionloop.cli import cli

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "var"), "faces", *args])
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def test_a_collection_from_the_command_line(tmp_path: Path) -> None:
    folder = shared_dataset("faces")
    a1, a2, b = (str(folder / p) for p in ("person_01/img1.jpg", "person_01/img2.jpg", "person_02/img3.jpg"))
    assert _run(tmp_path, "collection", "create", "door", "--tag", "site=a")[0] == 0
    code, out = _run(tmp_path, "index", "door", a1, b, "--json")
    assert code == 0, out
    indexed = [doc["faces"][0]["face"]["face_id"] for doc in json.loads(out)]
    code, out = _run(tmp_path, "collection", "describe", "door", "--json")
    assert json.loads(out)["face_count"] == 2 and json.loads(out)["tags"] == {"site": "a"}
    code, out = _run(tmp_path, "search", "door", a2, "--json")
    assert code == 0 and [m["face"]["face_id"] for m in json.loads(out)["matches"]] == [indexed[0]]
    code, out = _run(tmp_path, "search", "door", "--face-id", indexed[0], "--threshold", "0")
    assert code == 0 and indexed[1] in out
    assert _run(tmp_path, "user", "create", "door", "alice")[0] == 0
    code, out = _run(tmp_path, "user", "associate", "door", "alice", indexed[0])
    assert code == 0 and "1 face(s) associated; the user is ACTIVE" in out
    code, out = _run(tmp_path, "user", "search", "door", a2, "--json")
    assert [m["user"]["user_id"] for m in json.loads(out)["matches"]] == ["alice"]
    code, out = _run(tmp_path, "delete", "door", indexed[0], indexed[1])
    assert "1 face(s) deleted" in out and "ASSOCIATED_TO_AN_EXISTING_USER" in out
    code, out = _run(tmp_path, "list", "door", "--user", "alice")
    assert code == 0 and indexed[0] in out
    code, out = _run(tmp_path, "collection", "list")
    assert "door" in out
    assert _run(tmp_path, "collection", "delete", "door")[0] == 0
    code, out = _run(tmp_path, "collection", "describe", "door")
    assert code != 0 and "does not exist" in out
    code, out = _run(tmp_path, "search", "door")
    assert code != 0
