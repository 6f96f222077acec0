"""The CLI of the detection log, the inboxes, sampling and the drift signal: ``visionloop detections``
with filters and pages, ``workflow scan`` (labelled and detection inboxes, in this process, with bad
images), ``workflow inbox``, ``workflow sample`` and ``workflow agreement``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import shared_dataset
from tests.factories import make_project
from visionloop import bootstrap
from visionloop.bootstrap import build_services
from visionloop.cli import cli
from visionloop.core.entities import DatasetType, VersionStatus
from visionloop.core.parameters import update_parameters
from visionloop.core.services import Services
from visionloop.core.training import TrainingOptions, request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.errors import VisionloopError
from visionloop.settings import load_settings

ENV = {"VISIONLOOP_INBOX_SETTLE_SECONDS": "0"}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def svc(data: Path) -> Iterator[Services]:
    services = build_services(load_settings({"data_dir": str(data)}, environ={}))
    yield services
    services.repo.close()


def run(data: Path, *args: str) -> str:
    result = CliRunner(env=ENV).invoke(cli, ["--data-dir", str(data), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def refused(data: Path, *args: str) -> str:
    """The message of the error the command stops with (main() prints it and exits 1)."""
    result = CliRunner(env=ENV).invoke(cli, ["--data-dir", str(data), *args])
    assert isinstance(result.exception, VisionloopError), result.output
    return result.exception.message


def put(svc: Services, key: str, data: bytes) -> None:
    svc.buckets.create_bucket("visionloop")
    svc.buckets.put("visionloop", key, data)


def test_scan_the_labelled_inbox_then_train_and_detect(
    data: Path, svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    logos = shared_dataset("aws-logos")
    make_project(svc, "logos")
    for label in ("amazon_logo", "aws_logo"):
        for f in sorted((logos / label).iterdir()):
            put(svc, f"logos/images_labeled_by_folder/{label}/{f.name}", f.read_bytes())
    put(svc, "logos/images_labeled_by_folder/aws_logo/notes.txt", b"not an image")
    report: dict[str, Any] = json.loads(run(data, "workflow", "scan", "logos", "--json"))
    assert (report["added"], report["failed"]) == (10, 1), report
    train = svc.repo.find_dataset(svc.repo.get_project("logos").id, DatasetType.TRAIN)
    assert train is not None and svc.repo.count_entries(train.id) == 10
    items = json.loads(run(data, "workflow", "inbox", "logos", "--json"))
    assert len(items) == 11 and "logos/errors/images_labeled_by_folder/aws_logo/notes.txt" in {
        i["moved_to"] for i in items
    }
    assert "label failed: logos/images_labeled_by_folder/aws_logo/notes.txt → logos/errors/" in run(
        data, "workflow", "inbox", "logos"
    )

    # a version trained on them (the colour engine stands in for the real one in this process)
    request_training(svc, "logos", TrainingOptions(version_name="v1"))
    job = svc.repo.claim_job(svc.clock.now())
    assert job is not None
    version = run_training_job(svc, ColourEngine(), job, "us-east-1", "123456789012")
    monkeypatch.setattr(bootstrap, "build_engine", lambda settings, num_threads=None: ColourEngine())
    photos = sorted((logos / "inference_images").iterdir())
    for photo in photos:
        put(svc, f"logos/images_for_detection/{photo.name}", photo.read_bytes())
    out = run(data, "workflow", "scan", "logos")
    assert "no version of the project is serving" in out and "10 waiting" in out
    update_parameters(
        svc, "logos", {"human_sampling_enabled": True, "human_sampling_interval": 4}, changed_by="t"
    )
    out = run(data, "workflow", "scan", "logos", "--version", "v1")
    assert "10 detected" in out and "inference-image-1.png: detected → logos/detection_results/" in out
    assert svc.repo.get_version_by_id(version.id).status is VersionStatus.TRAINING_COMPLETED

    # the log: every detection from the inbox, filters and pages
    found = json.loads(run(data, "detections", "logos", "--json", "--limit", "100"))["detections"]
    assert len(found) == 10 and {d["source"] for d in found} == {"inbox"}
    table = run(data, "detections", "logos", "--limit", "3")
    assert "more: --cursor" in table and "inbox" in table
    cursor = table.split("more: --cursor ", 1)[1].split()[0]
    rest = json.loads(run(data, "detections", "logos", "--json", "--limit", "100", "--cursor", cursor))
    assert [d["id"] for d in rest["detections"]] == [d["id"] for d in found[3:]]
    top = found[0]["top_label"]
    by_label = json.loads(run(data, "detections", "logos", "--json", "--label", top, "--min-confidence", "0"))
    assert by_label["detections"] and all(
        top in {lab["name"] for lab in d["labels"]} for d in by_label["detections"]
    )
    since = found[0]["detected_at"]
    assert len(json.loads(run(data, "detections", "logos", "--json", "--since", since))["detections"]) >= 1
    assert "--since must be an ISO 8601 time" in refused(data, "detections", "logos", "--since", "soon")
    assert "min_confidence" in refused(data, "detections", "logos", "--min-confidence", "200")
    assert "does not exist" in refused(data, "workflow", "scan", "ghost")

    # every 4th detection opened an audit loop; the sampling check and the drift table
    loops = json.loads(run(data, "review", "loops", "logos", "--json"))
    assert sorted(lp["purpose"] for lp in loops) == ["audit", "audit"]
    assert "sampled" in run(data, "workflow", "sample", "logos")
    assert "loops" in run(data, "workflow", "agreement", "logos", "--bucket", "week")
    assert json.loads(run(data, "workflow", "agreement", "logos", "--json")) == []  # none answered yet
