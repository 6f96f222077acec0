"""One real server for the whole AWS suite: uvicorn in a thread on a free port, over a data folder in tmp,
with no worker processes (``workers=0``). Training jobs run in a worker thread of the test process with
the fake colour engine (a real TrainingEngine), through the worker's own ``run_job``; started versions
are served by real inference units (processes) that load the colour engine. boto3 talks to the server
over HTTP exactly as it would to AWS, with dummy credentials."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.factories import classification_line, image_bytes
from tests.servers import serve_in_thread
from visionloop.api.app import create_app
from visionloop.bootstrap import build_services, build_serving, fake_engine
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.engines.fake import ColourEngine
from visionloop.settings import Settings, load_settings
from visionloop.workflows.worker import run_job

REGION = "us-east-1"
ACCOUNT = "123456789012"
COLOURS = {"red": (210, 30, 30), "blue": (30, 40, 210), "green": (30, 200, 40)}


@dataclass
class Worker:
    """Runs queued training jobs with the colour engine while the gate is open."""

    svc: Services
    settings: Settings
    gate: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    busy: threading.Lock = field(default_factory=threading.Lock)

    def loop(self) -> None:
        engine = ColourEngine()
        while not self.stop.is_set():
            with self.busy:
                job = self.svc.repo.claim_job(self.svc.clock.now()) if self.gate.is_set() else None
                if job is not None:
                    run_job(self.svc, engine, job, self.settings.region, self.settings.account_id)
            if job is None:
                self.stop.wait(0.05)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No job is claimed inside the block (a job being run when it starts is finished first)."""
        self.gate.clear()
        with self.busy:
            pass
        try:
            yield
        finally:
            self.gate.set()


@dataclass
class Server:
    url: str
    svc: Services  # the server's own services: tests fill buckets through them
    settings: Settings
    worker: Worker
    serving: Serving
    names: Iterator[int] = field(default_factory=count)

    def name(self, stem: str) -> str:
        """A project name no other test uses (the server is shared by the session)."""
        return f"{stem}-{next(self.names)}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("aws") / "var"
    settings = load_settings(
        {"data_dir": str(data), "workers": 0, "region": REGION, "account_id": ACCOUNT}, environ={}
    )
    with running(settings) as found:
        yield found


@contextmanager
def running(settings: Settings) -> Iterator[Server]:
    """The server over ``settings`` (and its worker thread) until the block ends."""
    svc = build_services(settings)
    serving = build_serving(settings, engine_factory=fake_engine)
    worker = Worker(build_services(settings), settings)
    worker.gate.set()
    worker_thread = threading.Thread(target=worker.loop, daemon=True)
    worker_thread.start()
    try:
        with serve_in_thread(create_app(svc, settings, serving)) as url:
            yield Server(url, svc, settings, worker, serving)
    finally:
        worker.stop.set()
        worker_thread.join(10)
        serving.host.close()  # the lifespan that would stop the inference units is off
        worker.svc.repo.close()
        svc.repo.close()


@pytest.fixture(scope="session")
def rek(server: Server) -> object:
    """A Rekognition client; no retries, so every error is seen as the server sent it."""
    return boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def rek_raw(server: Server) -> object:
    """A client that skips botocore's own parameter checks (required, types, minimums), to show what the
    server answers to requests other SDKs or hand-written clients may send."""
    return boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, parameter_validation=False),
    )


def put_labelled_images(
    server: Server, bucket: str, prefix: str, counts: dict[str, int], start: int = 0
) -> list[str]:
    """Store ``counts[label]`` distinct images per label under ``s3://bucket/prefix/<label>_<i>.jpg``
    and return their classification manifest lines."""
    server.svc.buckets.create_bucket(bucket)
    lines = []
    for label, n in counts.items():
        r, g, b = COLOURS[label]
        for i in range(start, start + n):
            key = f"{prefix}/{label}_{i}.jpg"
            server.svc.buckets.put(bucket, key, image_bytes(96, 80, (r + i % 20, g + i % 13, b)))
            lines.append(classification_line(f"s3://{bucket}/{key}", label))
    return lines


def put_manifest(server: Server, bucket: str, key: str, lines: list[str]) -> dict[str, str]:
    """Store a manifest and return the S3Object that names it."""
    server.svc.buckets.create_bucket(bucket)
    server.svc.buckets.put(bucket, key, ("\n".join(lines) + "\n").encode())
    return {"Bucket": bucket, "Name": key}


def create_train_dataset(
    rek: Any, server: Server, bucket: str, stem: str, lines: list[str]
) -> tuple[str, str]:
    """A new project (named after ``stem``) and its TRAIN dataset made by CreateDataset from a manifest of
    ``lines`` stored in ``bucket``: their ARNs."""
    project: str = rek.create_project(ProjectName=server.name(stem))["ProjectArn"]
    manifest = put_manifest(server, bucket, f"{project.split('/')[1]}.manifest", lines)
    source = {"GroundTruthManifest": {"S3Object": manifest}}
    arn: str = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)["DatasetArn"]
    return project, arn


def dataset_entries(rek: Any, arn: str, **filters: Any) -> list[dict[str, Any]]:
    """Every line ListDatasetEntries answers (all pages), parsed."""
    pages = rek.get_paginator("list_dataset_entries").paginate(DatasetArn=arn, **filters)
    return [json.loads(line) for page in pages for line in page["DatasetEntries"]]
