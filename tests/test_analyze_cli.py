"""visionloop analyze labels|text|moderation: a table by default, --json for scripts, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import shared_dataset
from tests.factories import image_bytes
from visionloop.cli import cli


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "var"), "analyze", *args])
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def test_labels_table_and_json(tmp_path: Path) -> None:
    banana = sorted((shared_dataset("grocery-produce") / "Banana").glob("*.jpg"))[0]
    code, out = _run(tmp_path, "labels", str(banana), "--properties")
    assert code == 0, out
    assert "Banana" in out and "Fruit, Produce, Food" in out and "visionloop-labels-" in out
    assert "brightness" in out and "colours:" in out
    code, out = _run(tmp_path, "labels", str(banana), str(banana), "--json", "--max-labels", "3")
    assert code == 0, out
    doc = json.loads(out)
    assert [d["image"] for d in doc] == [str(banana)] * 2
    assert (
        len(doc[0]["labels"]) == 3 and doc[0]["labels"][0]["confidence"] >= doc[0]["labels"][2]["confidence"]
    )
    assert "image_properties" not in doc[0]


def test_text_and_moderation(tmp_path: Path) -> None:
    sign = shared_dataset("ocr") / "signs" / "chinese.jpg"
    code, out = _run(tmp_path, "text", str(sign), "--words")
    assert code == 0 and "Yuyuan" in out and "WORD" in out, out
    code, out = _run(tmp_path, "moderation", str(sign), "--json")
    assert code == 0, out
    assert json.loads(out)[0]["moderation_labels"] == []


def test_images_from_a_bucket_and_errors(tmp_path: Path) -> None:
    picture = tmp_path / "plain.jpg"
    picture.write_bytes(image_bytes(120, 100))
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "var")]
    assert runner.invoke(cli, [*data, "bucket", "put", str(picture), "s3://photos/plain.jpg"]).exit_code == 0
    code, out = _run(tmp_path, "moderation", "s3://photos/plain.jpg", "--json")
    assert code == 0 and json.loads(out)[0]["image"] == "s3://photos/plain.jpg"
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(image_bytes(40, 40, fmt="PNG"))
    for args, message in [
        (["labels", str(tmp_path / "nothing.jpg")], "no such file"),
        (["labels", str(tiny)], "at least 80 px"),
        (["text", "s3://photos/missing.jpg"], "does not exist"),
        (["labels", str(picture), "--min-confidence", "120"], "min_confidence"),
        (["labels"], "Missing argument"),
    ]:
        code, out = _run(tmp_path, *args)
        assert code != 0 and message in out, (args, out)
