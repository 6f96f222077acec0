"""Batch inference over a bucket prefix with the colour engine: JSON Lines parts, per-image errors,
progress and summary, a resume after a kill, and the Ray runner when ray is installed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.factories import image_bytes
from tests.workflows.helpers import BLUE, RED, colour_project, run_jobs
from visionloop.bootstrap import build_services, fake_engine
from visionloop.core.batch import PROGRESS, SUMMARY, BatchProgress, read_progress
from visionloop.core.services import Services
from visionloop.core.training import TrainingOptions, request_training
from visionloop.errors import InvalidInput, NotFound
from visionloop.settings import Settings
from visionloop.workflows.batch import run_batch_job

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model(services: Services, tmp_path: Path) -> str:
    colour_project(services, tmp_path)
    request_training(services, "colours", TrainingOptions(version_name="v1"))
    assert run_jobs(services) == 1
    return "colours/v1"


def put_images(svc: Services, count: int, size: int = 96) -> dict[str, str]:
    """``count`` red and blue PNGs under s3://photos/in/ (plus a text file and a broken image): the
    colour each key should get."""
    svc.buckets.create_bucket("photos")
    expected = {}
    for i in range(count):
        label, colour = ("red", RED) if i % 2 else ("blue", BLUE)
        key = f"in/{i:03d}.png"
        shade = (colour[0], colour[1] + i % 5, colour[2])
        svc.buckets.put("photos", key, image_bytes(size, size, shade, "PNG"))
        expected[key] = label
    svc.buckets.put("photos", "in/notes.txt", b"not an image")
    svc.buckets.put("photos", "in/broken.jpg", b"\xff\xd8 not really a JPEG")
    return expected


def output_lines(svc: Services, prefix: str = "out/") -> list[dict[str, Any]]:
    lines = []
    for info in svc.buckets.list_objects("photos", prefix + "part-"):
        lines += [json.loads(raw) for raw in svc.buckets.get("photos", info.key).decode().splitlines()]
    return lines


def test_batch_writes_one_line_per_image_with_progress_and_summary(
    services: Services, settings: Settings, model: str
) -> None:
    expected = put_images(services, 12)
    seen: list[BatchProgress] = []
    progress = run_batch_job(
        settings,
        model,
        "s3://photos/in/",
        "s3://photos/out/",
        engine_factory=fake_engine,
        workers=2,
        part_size=5,
        on_progress=lambda p: seen.append(BatchProgress(**p.as_json())),
    )
    lines = output_lines(services)
    assert sorted(line["key"] for line in lines) == sorted([*expected, "in/broken.jpg"])
    for line in lines:
        if line["key"] == "in/broken.jpg":
            assert line["error"]["code"] == "InvalidImage"
        else:
            top = line["answer"]["CustomLabels"][0]
            assert top["Name"] == expected[line["key"]] and 0 < top["Confidence"] <= 100
    assert (progress.total, progress.done, progress.failed, progress.skipped) == (13, 13, 1, 1)
    assert progress.parts == 3 and progress.errors == {"InvalidImage": 1}
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done == 13
    summary = json.loads(services.buckets.get("photos", "out/" + SUMMARY))
    assert summary["state"] == "succeeded" and summary["done"] == 13 and summary["images_per_second"] > 0
    assert read_progress(services, "s3://photos/out/")["state"] == "succeeded"

    again = run_batch_job(settings, model, "s3://photos/in/", "s3://photos/out/", engine_factory=fake_engine)
    assert (again.resumed, again.done, again.parts) == (13, 13, 3)  # nothing answered twice
    assert len(output_lines(services)) == 13


def test_batch_refuses_what_it_cannot_run(services: Services, settings: Settings, model: str) -> None:
    put_images(services, 2)
    with pytest.raises(InvalidInput, match="must not contain"):
        run_batch_job(settings, model, "s3://photos/in/", "s3://photos/", engine_factory=fake_engine)
    with pytest.raises(NotFound):
        run_batch_job(settings, "colours/v9", "s3://photos/in/", "s3://photos/o/", engine_factory=fake_engine)
    with pytest.raises(NotFound):
        run_batch_job(settings, model, "s3://nobucket/in/", "s3://photos/o/", engine_factory=fake_engine)
    with pytest.raises(NotFound):
        read_progress(services, "s3://photos/never/")


_KILLED_RUN = """
import sys
from visionloop.bootstrap import fake_engine
from visionloop.settings import load_settings
from visionloop.workflows.batch import run_batch_job

settings = load_settings({"data_dir": sys.argv[1]}, environ={})
run_batch_job(settings, "colours/v1", "s3://photos/in/", "s3://photos/out/",
              engine_factory=fake_engine, workers=1, part_size=2)
"""


def test_a_killed_batch_resumes_and_answers_every_image_once(
    services: Services, settings: Settings, model: str
) -> None:
    expected = put_images(services, 40, size=1200)  # big PNGs: slow enough to be killed midway
    progress_file = settings.data_path / "buckets" / "photos" / "out" / PROGRESS
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_RUN), str(settings.data_path)],
        cwd=REPO,
        start_new_session=True,  # its worker process goes down with it
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if progress_file.exists() and json.loads(progress_file.read_text())["parts"] >= 1:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the batch ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    killed = json.loads(progress_file.read_text())
    assert 0 < killed["done"] < 41 and killed["state"] == "running"
    assert not services.buckets.exists("photos", "out/" + SUMMARY)

    progress = run_batch_job(
        settings, model, "s3://photos/in/", "s3://photos/out/", engine_factory=fake_engine, part_size=2
    )
    assert progress.resumed >= killed["done"] and progress.done == 41
    counts = Counter(line["key"] for line in output_lines(services))
    assert counts == Counter([*expected, "in/broken.jpg"])  # every image exactly once


def test_the_ray_runner_answers_like_the_local_one(
    services: Services, settings: Settings, model: str
) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'visionloop[ray]')")
    expected = put_images(services, 10)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        progress = run_batch_job(
            settings,
            model,
            "s3://photos/in/",
            "s3://photos/ray/",
            engine_factory=fake_engine,
            ray_address="local",
            part_size=3,
        )
    finally:
        ray.shutdown()
    assert (progress.done, progress.failed, progress.parts) == (11, 1, 4)
    for line in output_lines(services, "ray/"):
        if "answer" in line:
            assert line["answer"]["CustomLabels"][0]["Name"] == expected[line["key"]]


def test_batch_over_s3_buckets(settings: Settings, model: str, s3_endpoint: str) -> None:
    """The buckets on a real S3 protocol server (moto): the workers read the images and the parts are
    written through the S3 store; the run resumes there as well."""
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST")).close()
    on_s3 = settings.replace(
        buckets_url="s3://",
        s3_endpoint_url=s3_endpoint,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    svc = build_services(on_s3)
    try:
        expected = put_images(svc, 6)
        progress = run_batch_job(
            on_s3, model, "s3://photos/in/", "s3://results/b/", engine_factory=fake_engine, part_size=4
        )
        assert (progress.done, progress.failed, progress.parts) == (7, 1, 2)
        lines = [
            json.loads(raw)
            for info in svc.buckets.list_objects("results", "b/part-")
            for raw in svc.buckets.get("results", info.key).decode().splitlines()
        ]
        assert {
            line["key"]: line["answer"]["CustomLabels"][0]["Name"] for line in lines if "answer" in line
        } == (expected)
        again = run_batch_job(on_s3, model, "s3://photos/in/", "s3://results/b/", engine_factory=fake_engine)
        assert again.resumed == 7 and read_progress(svc, "s3://results/b/")["state"] == "succeeded"
    finally:
        svc.close()
