"""Interrupted work against a real `visionloop serve` (subprocess, real SQLite file, real engine): a worker
killed with SIGKILL during a training has its job failed with a message and is replaced, and the next
training runs on the new worker; a server killed during CreateDataset leaves the dataset CREATE_FAILED
(not CREATE_COMPLETE and empty) after its restart, and creating it again works."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.factories import (
    classification_line,
    make_project,
    photo_bytes,
    write_folder_dataset,
)
from tests.workflows.test_restart import Server, wait_for
from visionloop.bootstrap import build_services
from visionloop.core import datasets
from visionloop.settings import load_settings

JOBS = "/api/v1/jobs"


def _prepare(data: Path, tmp_path: Path) -> None:
    svc = build_services(load_settings({"data_dir": str(data)}, environ={}))
    try:
        make_project(svc, "logos")
        folder = write_folder_dataset(tmp_path / "labelled", {"red": 6, "blue": 6})
        assert datasets.import_folder(svc, "logos", str(folder)).imported == 12
    finally:
        svc.repo.close()


def _job(server: Server, job_id: int) -> dict[str, Any]:
    job: dict[str, Any] = httpx.get(f"{server.url}{JOBS}/{job_id}", timeout=30).json()
    return job


def _train(server: Server) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/v1/projects/logos/versions", json={}, timeout=30)
    assert r.status_code == 202, r.text
    job: dict[str, Any] = r.json()["job"]
    return job


def test_a_killed_worker_fails_its_job_and_a_new_worker_takes_the_next(tmp_path: Path) -> None:
    data = tmp_path / "var"
    _prepare(data, tmp_path)
    server = Server(data, tmp_path / "server.log")
    try:
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "ok" and health["workers"]["expected"] == health["workers"]["alive"] == 1
        [first] = wait_for("the worker", server.workers, 30, server)
        job = _train(server)
        wait_for("the training to run", lambda: _job(server, job["id"])["status"] == "RUNNING", 60, server)
        os.kill(first, signal.SIGKILL)
        seen = wait_for(
            "/healthz to report the dead worker",
            lambda: (h := httpx.get(f"{server.url}/healthz").json())["status"] == "degraded" and h,
            30,
            server,
        )
        assert seen["workers"]["alive"] == 0
        failed = wait_for(
            "the job to fail", lambda: (j := _job(server, job["id"]))["status"] == "FAILED" and j, 30, server
        )
        assert failed["message"].startswith("interrupted: the worker running this job died (pid"), failed
        v1 = server.get("/versions/v1")
        assert v1["status"] == "TRAINING_FAILED" and v1["status_message"] == failed["message"]
        wait_for("a new worker", lambda: [p for p in server.workers() if p != first], 30, server)
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "ok" and health["workers"] == {"expected": 1, "alive": 1, "replaced": 1}

        again = _train(server)
        done = wait_for(
            "the next training",
            lambda: (j := _job(server, again["id"]))["status"] in ("SUCCEEDED", "FAILED") and j,
            300,
            server,
        )
        assert done["status"] == "SUCCEEDED", done
        assert server.get("/versions/v2")["status"] == "TRAINING_COMPLETED"
    finally:
        server.close()


def test_a_server_killed_during_create_dataset_leaves_it_create_failed(tmp_path: Path) -> None:
    data = tmp_path / "var"
    svc = build_services(load_settings({"data_dir": str(data)}, environ={}))
    try:
        svc.buckets.create_bucket("big")
        lines = []
        for i in range(1500):
            svc.buckets.put("big", f"img/{i}.jpg", photo_bytes(i, (96, 80)))
            lines.append(classification_line(f"s3://big/img/{i}.jpg", "even" if i % 2 else "odd"))
        svc.buckets.put("big", "train.manifest", ("\n".join(lines) + "\n").encode())
    finally:
        svc.repo.close()
    source = {"GroundTruthManifest": {"S3Object": {"Bucket": "big", "Name": "train.manifest"}}}

    server = Server(data, tmp_path / "server.log")
    try:
        rek = _client(server)
        project = rek.create_project(ProjectName="big")["ProjectArn"]

        def create() -> None:
            with contextlib.suppress(Exception):  # the server is killed under it
                rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)

        caller = threading.Thread(target=create, daemon=True)
        caller.start()
        status = wait_for("the dataset to show", lambda: _dataset_status(rek), 60, server)
        assert status == "CREATE_IN_PROGRESS"  # was CREATE_COMPLETE, empty, from the start
        server.kill()
        caller.join(30)
    except BaseException:
        server.close()
        raise

    server = Server(data, tmp_path / "server.log")
    try:
        rek = _client(server)
        (p,) = rek.describe_projects(ProjectNames=["big"])["ProjectDescriptions"]
        (ds,) = p["Datasets"]
        assert ds["Status"] == "CREATE_FAILED", ds  # was CREATE_COMPLETE
        desc = rek.describe_dataset(DatasetArn=ds["DatasetArn"])["DatasetDescription"]
        assert desc["StatusMessageCode"] == "SERVICE_ERROR"
        assert desc["StatusMessage"].startswith("The server stopped before the dataset's entries")
        assert desc["DatasetStats"]["TotalEntries"] < 1500
        # creating it again works (was ResourceAlreadyExistsException) and is complete
        arn = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)["DatasetArn"]
        desc = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
        assert desc["Status"] == "CREATE_COMPLETE" and desc["DatasetStats"]["TotalEntries"] == 1500, desc
    finally:
        server.close()


def _client(server: Server) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=300),
    )


def _dataset_status(rek: Any) -> str | None:
    (p,) = rek.describe_projects(ProjectNames=["big"])["ProjectDescriptions"]
    return p["Datasets"][0]["Status"] if p["Datasets"] else None
