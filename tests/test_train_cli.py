"""Real training end to end through the CLI: the bundled EfficientNet-Lite0 backbone via ONNX Runtime on
the aws-logos photos, evaluation, and prediction from a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import shared_dataset
from visionloop.cli import cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    logos = shared_dataset("aws-logos")
    data = tmp_path_factory.mktemp("train") / "var"
    labelled = tmp_path_factory.mktemp("labelled")
    for label in ("amazon_logo", "aws_logo"):
        (labelled / label).mkdir()
        for f in (logos / label).iterdir():
            (labelled / label / f.name).write_bytes(f.read_bytes())

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--data-dir", str(data), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("project", "create", "logos")
    run("dataset", "import", "logos", str(labelled))
    out = json.loads(run("train", "logos", "--json"))
    return data, out


def test_training_completes_with_an_evaluation(trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    _, version = trained
    assert version["status"] == "TRAINING_COMPLETED", version["status_message"]
    ev = version["evaluation"]
    assert {m["label"] for m in ev["per_label"]} == {"amazon_logo", "aws_logo"}
    assert 0 <= version["f1"] <= 1 and ev["n_images"] == 2
    assert any("only 1 test image;" in w for w in ev["warnings"]), ev["warnings"]
    assert version["params"]["backbones"] == ["efficientnet-lite0-int8"]
    assert version["params"]["library_versions"]["visionloop"]
    # TEST was split off automatically: the served head learned it once it was evaluated
    assert version["params"]["refit_on_test"] is True and version["params"]["trained_on_images"] == 10


def test_jobs_and_evaluate_commands(trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    data, version = trained
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "jobs", "list", "--json"])
    [job] = json.loads(result.output)
    assert job["status"] == "SUCCEEDED" and job["progress"] == 1.0
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "evaluate", "logos"])
    assert result.exit_code == 0 and "amazon_logo" in result.output and "macro F1" in result.output
    assert "also learned its 2 TEST images" in result.output
    # the review guide, measured on the cross-validation of the 8 training images
    guide = version["evaluation"]["review_guide"]
    assert guide["images"] == 8 and guide["basis"] == "cross-validation"
    if guide["suggested"] is not None:  # no suggestion when cross-validation made no mistake
        level = guide["suggested"]["min_confidence"]
        assert f"review: min_confidence {level:g} sends" in " ".join(result.output.split()), result.output
    # what training kept: fast mode's seven views, in the framing cross-validation chose (the logos are
    # oblong photos, so it chose between the centre square and the whole image)
    framing = {"whole image": "of the whole image", "centre": "centred"}[version["params"]["framing"]]
    line = f"efficientnet-lite0-int8, linear head, 7 views {framing} (7 averaged to predict), fast mode"
    assert f"model: {line}" in " ".join(result.output.split()), result.output


def test_predict_in_a_fresh_process_is_identical(trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    data, _ = trained
    images = sorted((shared_dataset("aws-logos") / "inference_images").iterdir())[:3]
    cmd = [
        sys.executable,
        "-m",
        "visionloop",
        "--data-dir",
        str(data),
        "predict",
        "logos/v1",
        *map(str, images),
    ]
    first = subprocess.run(
        [*cmd, "--min-confidence", "0", "--json"], capture_output=True, text=True, check=True
    )
    second = subprocess.run(
        [*cmd, "--min-confidence", "0", "--json"], capture_output=True, text=True, check=True
    )
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a == b
    for item in a["predictions"]:
        assert [lab["name"] for lab in item["labels"]] and abs(
            sum(lab["confidence"] for lab in item["labels"]) - 100
        ) < 0.1
    bad = subprocess.run([*cmd[:-3], __file__], capture_output=True, text=True)
    assert bad.returncode == 1 and "not a readable JPEG or PNG" in bad.stderr


def test_same_seed_same_model(trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    data, first = trained
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data), "train", "logos", "--version-name", "again", "--json"]
    )
    again = json.loads(result.output)
    assert again["status"] == "TRAINING_COMPLETED"
    assert again["f1"] == first["f1"]
    assert again["evaluation"]["per_label"] == first["evaluation"]["per_label"]
    assert again["params"]["classifier"]["l2"] == first["params"]["classifier"]["l2"]


def test_hyperparams_option(trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    data, _ = trained

    def train(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--data-dir", str(data), "train", "logos", *args])
        return result.exit_code, result.output

    code, out = train("--version-name", "l2", "--hyperparams", '{"l2": 0.01}', "--json")
    assert code == 0, out
    version = json.loads(out)
    assert version["status"] == "TRAINING_COMPLETED" and version["params"]["classifier"]["l2"] == 0.01
    # patch scores kept whatever cross-validation says: the model line names them
    patches = '{"force_patch_scores": true, "patch_size": 128, "patch_bank": 64}'
    code, out = train("--version-name", "patches", "--hyperparams", patches, "--json")
    assert code == 0 and json.loads(out)["params"]["classifier"]["patches"]["size"] == 128, out
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "evaluate", "logos", "patches"])
    assert "linear head with patch scores at 128 px" in " ".join(result.output.split()), result.output
    # the trainer checks names and values: the version fails with a message that names the wrong one
    code, out = train("--version-name", "bad", "--hyperparams", '{"epochz": 3}', "--json")
    failed = json.loads(out)
    assert code == 1 and failed["status"] == "TRAINING_FAILED" and "epochz" in failed["status_message"]
    # what is not a JSON object is refused before anything is queued
    for text, why in (("{l2: 1}", "not JSON"), ("[1]", "a JSON object is needed")):
        code, out = train("--hyperparams", text)
        assert code == 2 and "--hyperparams" in out and why in out, out
