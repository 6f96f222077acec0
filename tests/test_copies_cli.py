"""``visionloop version copy`` and ``visionloop policy …`` on a data folder whose version was trained with
the colour engine: a copy, a policy that refuses one, its replacement by revision, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from tests.factories import make_project, write_folder_dataset
from visionloop.bootstrap import build_services
from visionloop.cli import cli
from visionloop.core import datasets
from visionloop.core.training import TrainingOptions, request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.errors import VisionloopError
from visionloop.settings import load_settings


def _trained(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    svc = build_services(load_settings({"data_dir": str(data)}, environ={}))
    try:
        make_project(svc, "colours")
        make_project(svc, "other")
        datasets.import_folder(
            svc, "colours", str(write_folder_dataset(tmp_path / "d", {"red": 5, "blue": 5}))
        )
        request_training(svc, "colours", TrainingOptions(version_name="v1"))
        job = svc.repo.claim_job(svc.clock.now())
        assert job is not None
        run_training_job(svc, ColourEngine(), job, "us-east-1", "123456789012")
    finally:
        svc.close()
    return data


def test_copy_and_policies(tmp_path: Path) -> None:
    data = _trained(tmp_path)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--data-dir", str(data), *args])

    def error(*args: str) -> str:
        """The domain error a command ends with (visionloop.cli.main prints it as "error: …")."""
        result = run(*args)
        assert isinstance(result.exception, VisionloopError), result.output
        return result.exception.message

    doc = tmp_path / "policy.json"
    statement = {"Effect": "Allow", "Principal": "*", "Action": "rekognition:*", "Resource": "arn:*:nope/*"}
    doc.write_text(json.dumps({"Statement": statement}))
    out = run("policy", "put", "colours", "share", str(doc))
    assert out.exit_code == 0, out.output
    listed = json.loads(run("policy", "list", "colours", "--json").output)
    assert [p["name"] for p in listed] == ["share"]
    revision = listed[0]["revision_id"]

    assert "no statement" in error("version", "copy", "colours/v1", "other", "c1")
    statement["Resource"] = "*"
    doc.write_text(json.dumps({"Statement": statement}))
    assert "already has a policy" in error("policy", "put", "colours", "share", str(doc))
    assert run("policy", "put", "colours", "share", str(doc), "--revision", revision).exit_code == 0
    copied = run("version", "copy", "colours/v1", "other", "c1", "--json")
    assert copied.exit_code == 0, copied.output
    body = json.loads(copied.output)
    assert body["status"] == "TRAINING_COMPLETED" and ":project/colours/version/v1/" in body["copied_from"]
    assert "PROJECT/VERSION" in error("version", "copy", "colours", "other", "c2")
    assert "already has a model version" in error("version", "copy", "colours/v1", "other", "c1")

    assert "not the current revision" in error("policy", "delete", "colours", "share", "--revision", revision)
    assert run("policy", "delete", "colours", "share").exit_code == 0
    assert "no policy" in run("policy", "list", "colours").output
    doc.write_text("{")
    assert "not JSON" in error("policy", "put", "colours", "bad", str(doc))
