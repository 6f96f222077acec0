"""visionloop batch: a model version over a bucket prefix (colour engine), a pretrained analyser, and
clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import shared_dataset
from tests.factories import image_bytes
from tests.workflows.helpers import colour_project, run_jobs
from visionloop.bootstrap import build_services, fake_engine
from visionloop.cli import batch as batch_cli
from visionloop.cli import cli
from visionloop.core.batch import SUMMARY
from visionloop.core.training import TrainingOptions, request_training
from visionloop.settings import Settings, load_settings


def _cli(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args])
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def _run(data: Path, *args: str) -> tuple[int, str]:
    return _cli(data, "batch", *args)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


def test_batch_of_a_model_version(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings({"data_dir": str(data)}, environ={})
    svc = build_services(settings)
    try:
        colour_project(svc, tmp_path)
        request_training(svc, "colours", TrainingOptions(version_name="v1"))
        run_jobs(svc)
        svc.buckets.create_bucket("photos")
        for i in range(5):
            svc.buckets.put("photos", f"in/{i}.jpg", image_bytes(color=(220, 20 + i, 20)))
    finally:
        svc.close()

    def colour_engine(s: Settings) -> object:
        return fake_engine  # the workers load the version with the colour engine that trained it

    monkeypatch.setattr(batch_cli, "engine_factory", colour_engine)
    code, out = _run(data, "colours/v1", "s3://photos/in/", "--out", "s3://photos/out/", "--workers", "1")
    assert code == 0, out
    assert "5 images answered into s3://photos/out/ (0 failed" in out
    code, out = _run(data, "colours/v1", "s3://photos/in", "--out", "s3://photos/out", "--json")
    assert code == 0, out
    assert json.loads(out)["resumed"] == 5
    part = (data / "buckets" / "photos" / "out" / "part-00001.jsonl").read_text().splitlines()
    assert [json.loads(line)["answer"]["CustomLabels"][0]["Name"] for line in part] == ["red"] * 5
    assert (data / "buckets" / "photos" / "out" / SUMMARY).exists()


def test_batch_of_an_analyser(data: Path) -> None:
    signs = shared_dataset("ocr") / "signs"
    code, out = _cli(data, "bucket", "sync", str(signs), "s3://docs/signs")
    assert code == 0, out
    code, out = _run(data, "text", "s3://docs/signs/", "--out", "s3://docs/text/", "--workers", "1", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["done"] == doc["total"] >= 3 and doc["failed"] == 0
    lines = [
        json.loads(raw)
        for raw in (data / "buckets" / "docs" / "text" / "part-00001.jsonl").read_text().splitlines()
    ]
    assert any(d["DetectedText"] for line in lines for d in line["answer"]["TextDetections"])


def test_batch_errors(data: Path) -> None:
    code, out = _run(data, "nothing/v1", "s3://photos/in/", "--out", "s3://photos/out/")
    assert code != 0 and "nothing" in out
    code, out = _run(data, "text", "s3://photos/in/", "--out", "s3://photos/out/", "--part-size", "0")
    assert code != 0 and "part_size" in out
    code, out = _run(data, "text", "photos/in/", "--out", "s3://photos/out/")
    assert code != 0 and "s3://" in out


def test_batch_on_ray_without_ray(data: Path) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ray is installed: the message for its absence cannot be seen")
    code, out = _run(data, "text", "s3://photos/in/", "--out", "s3://photos/o/", "--ray-address", "local")
    assert code != 0 and "visionloop[ray]" in out
