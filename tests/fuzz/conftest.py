"""One real server for the fuzz suite (uvicorn in a thread on a free port, a data folder in tmp, the
colour engine for training and serving, as tests/aws/conftest.py builds it), seeded through its own APIs
so that generated requests reach real code and not only 404s: a project with TRAIN and TEST datasets, a
trained and started version, a detection, a review flow with a human loop and a webhook channel."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.aws.conftest import ACCOUNT, REGION, Server, put_labelled_images, put_manifest, running
from tests.factories import image_bytes, write_folder_dataset
from tests.fuzz.harness import TALLY
from visionloop.core.services import Services
from visionloop.settings import load_settings

PROJECT = "fuzz"
VERSION = "v1"
LOOP = "loop-1"
CHANNEL = "hook"
IMAGE = image_bytes(96, 80, (210, 30, 30))


@dataclass
class Seeds:
    """What exists on the server: values the generators put in paths, ARNs and bodies."""

    project_arn: str = ""
    version_arn: str = ""
    dataset_arns: list[str] = field(default_factory=list)
    flow_arn: str = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/{PROJECT}"
    bucket: str = "fuzz"
    image_key: str = "red_0.jpg"
    manifest_key: str = "fuzz.manifest"
    folder: str = ""  # a folder dataset on disk
    path_values: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class FuzzServer:
    url: str
    svc: Services
    seeds: Seeds


def _aws(url: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(
        url,
        content=json.dumps(body),
        headers={"X-Amz-Target": f"RekognitionService.{op}", "Content-Type": "application/x-amz-json-1.1"},
        timeout=60,
    )
    assert r.status_code == 200, (op, r.text)
    doc: dict[str, Any] = r.json()
    return doc


def _wait(what: str, check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.1)
    return found


def _ids(url: str, path: str, key: str, id_key: str = "id") -> list[Any]:
    r = httpx.get(url + path, timeout=30)
    return [item[id_key] for item in r.json().get(key, [])] if r.status_code == 200 else []


def seed(server: Server, tmp: Path) -> Seeds:
    s, url = Seeds(), server.url
    lines = put_labelled_images(server, s.bucket, "img", {"red": 6, "blue": 6})
    s.image_key = "img/red_0.jpg"
    put_manifest(server, s.bucket, s.manifest_key, lines)
    s.folder = str(write_folder_dataset(tmp / "folder", {"red": 3, "blue": 3}))
    s.project_arn = _aws(url, "CreateProject", {"ProjectName": PROJECT})["ProjectArn"]
    source = {"GroundTruthManifest": {"S3Object": {"Bucket": s.bucket, "Name": s.manifest_key}}}
    for kind, body in (("TRAIN", {"DatasetSource": source}), ("TEST", {})):
        answer = _aws(url, "CreateDataset", {"ProjectArn": s.project_arn, "DatasetType": kind, **body})
        s.dataset_arns.append(answer["DatasetArn"])
    version = {"ProjectArn": s.project_arn, "VersionName": VERSION, "OutputConfig": {"S3Bucket": "out"}}
    s.version_arn = _aws(url, "CreateProjectVersion", version)["ProjectVersionArn"]

    def status() -> str | None:
        found = _aws(url, "DescribeProjectVersions", {"ProjectArn": s.project_arn})
        state = str(found["ProjectVersionDescriptions"][0]["Status"])
        return state if state.endswith(("COMPLETED", "FAILED", "RUNNING")) else None

    assert _wait("training", status) == "TRAINING_COMPLETED"
    _aws(url, "StartProjectVersion", {"ProjectVersionArn": s.version_arn, "MinInferenceUnits": 1})
    assert _wait("starting", status) == "RUNNING"
    image = {"Bytes": base64.b64encode(IMAGE).decode()}
    _aws(url, "DetectCustomLabels", {"ProjectVersionArn": s.version_arn, "Image": image})
    loop = {
        "HumanLoopName": LOOP,
        "FlowDefinitionArn": s.flow_arn,
        "HumanLoopInput": {"InputContent": json.dumps({"taskObject": f"s3://{s.bucket}/{s.image_key}"})},
    }
    r = httpx.post(url + "/human-loops", json=loop, timeout=30)
    assert r.status_code == 200, r.text
    hook = {"name": CHANNEL, "kind": "webhook", "url": "http://127.0.0.1:9/hook", "enabled": False}
    httpx.post(f"{url}/api/v1/projects/{PROJECT}/channels", json=hook, timeout=30)
    p = f"/api/v1/projects/{PROJECT}"
    s.path_values = {
        "name": [PROJECT, LOOP, CHANNEL],
        "project": [PROJECT],
        "dataset_type": ["train", "test"],
        "version": [VERSION],
        "entry_id": _ids(url, p + "/datasets/train/entries", "entries")[:3] or [1],
        "job_id": _ids(url, "/api/v1/jobs", "jobs")[:3] or [1],
        "run_id": _ids(url, p + "/runs", "runs")[:3] or [1],
        "detection_id": _ids(url, p + "/detections", "detections")[:3] or [1],
        "delivery_id": _ids(url, p + "/deliveries", "deliveries")[:3] or [1],
    }
    return s


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    tmp = tmp_path_factory.mktemp("fuzz")
    values = {"data_dir": str(tmp / "var"), "workers": 0, "region": REGION, "account_id": ACCOUNT}
    values["webhook_allow_private"] = True  # the seeded webhook channel points at 127.0.0.1
    settings = load_settings(values | {"import_roots": [str(tmp)]}, environ={})
    with TALLY.capture(), running(settings) as server:
        seeds = seed(server, tmp)
        server.worker.gate.clear()  # versions the fuzzer asks for stay queued: no training during the run
        yield FuzzServer(server.url, server.svc, seeds)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if sum(TALLY.cases.values()):
        for line in TALLY.report():
            terminalreporter.write_line(line)
