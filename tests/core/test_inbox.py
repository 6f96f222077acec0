"""The watched inboxes end to end on a real SQLite file and a real object store, with the aws-logos photos:
images dropped into <project>/images_for_detection/ are detected by a colour-engine version in this
process (core.inbox with workflows.inbox.LocalDetector), their results written and the images moved, bad
images moved to errors/ with a reason; labelled images join TRAIN; nothing is taken twice — not after a
stop between detection and move, not by two scanners — and a name used twice gets a suffix."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import shared_dataset
from tests.factories import image_bytes, make_project
from visionloop.core import datasets, events
from visionloop.core.detections import DetectionSource, list_detections
from visionloop.core.entities import (
    DatasetType,
    EntrySource,
    ModelVersion,
    Prediction,
    TaskType,
    VersionStatus,
)
from visionloop.core.events import EventType
from visionloop.core.inbox import (
    MAX_IMAGE_BYTES,
    InboxKind,
    InboxSettings,
    ItemStatus,
    add_suffix,
    scan_all,
    scan_inbox,
)
from visionloop.core.services import Services
from visionloop.core.training import TrainingOptions, request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.errors import NotReady
from visionloop.workflows.detection_log import DetectionLog
from visionloop.workflows.inbox import InboxWatcher, LocalDetector

BUCKET = "visionloop"
INBOX = "logos/images_for_detection"
LABELLED = "logos/images_labeled_by_folder"


@dataclass
class Clock:
    """Wall-clock time plus an offset: objects written now have settled (inbox_settle_seconds) unless a
    test puts the clock back."""

    offset: timedelta = timedelta(minutes=5)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Counting:
    """A detector that counts its calls and may fail like a server that is not ready."""

    inner: LocalDetector
    calls: list[str] = field(default_factory=list)
    fail: bool = False

    def __call__(self, project: str, version: ModelVersion, bucket: str, key: str) -> Sequence[Prediction]:
        self.calls.append(key)
        if self.fail:
            raise NotReady("model version 'v1' is STOPPING; only a RUNNING version can detect labels")
        return self.inner(project, version, bucket, key)


@dataclass
class World:
    svc: Services
    clock: Clock
    log: DetectionLog
    detector: Counting
    logos: Path

    def put(self, key: str, data: bytes) -> None:
        self.svc.buckets.put(BUCKET, key, data)

    def keys(self, prefix: str) -> list[str]:
        return [o.key for o in self.svc.buckets.list_objects(BUCKET, prefix)]

    def scan(self, project: str = "logos", **kw: object) -> dict:  # type: ignore[type-arg]
        report = scan_inbox(self.svc, project, self.detector, **kw)  # type: ignore[arg-type]
        self.log.flush()
        return report.to_dict()

    def logged(self, project: str = "logos") -> list:  # type: ignore[type-arg]
        self.log.flush()
        return list_detections(self.svc, project, limit=1000).detections


@pytest.fixture
def world(services: Services) -> Iterator[World]:
    logos = shared_dataset("aws-logos")
    clock = Clock()
    services.clock = clock
    make_project(services, "logos")
    labelled = {label: logos / label for label in ("amazon_logo", "aws_logo")}
    for label, folder in labelled.items():
        for f in sorted(folder.iterdir()):
            datasets.add_image(services, "logos", f.read_bytes(), f.name, [label])
    request_training(services, "logos", TrainingOptions(version_name="v1"))
    job = services.repo.claim_job(services.clock.now())
    assert job is not None
    version = run_training_job(services, ColourEngine(), job, "us-east-1", "123456789012")
    assert version.status is VersionStatus.TRAINING_COMPLETED, version.status_message
    services.repo.update_version(version.id, status=VersionStatus.RUNNING)  # as a server would have it
    services.buckets.create_bucket(BUCKET)
    log = DetectionLog(services)
    world = World(services, clock, log, Counting(LocalDetector(services, ColourEngine, log)), logos)
    yield world
    log.stop()


def inference_images(world: World) -> list[Path]:
    return sorted((world.logos / "inference_images").iterdir())


def test_detection_inbox_end_to_end(world: World) -> None:
    photos = inference_images(world)
    for i, photo in enumerate(photos):
        world.put(f"{INBOX}/{'batch/' if i < 2 else ''}{photo.name}", photo.read_bytes())
    world.put(f"{INBOX}/bad.jpg", b"these bytes are not an image")
    world.put(f"{INBOX}/tiny.png", image_bytes(32, 32, fmt="PNG"))
    world.put(f"{INBOX}/.hidden.jpg", photos[0].read_bytes())
    report = world.scan()
    assert (report["detected"], report["failed"], report["waiting"]) == (10, 2, 0), report
    # each result is next to the inbox, the image moved to processed/
    for i, photo in enumerate(photos):
        name = f"{'batch/' if i < 2 else ''}{photo.name}"
        doc = json.loads(world.svc.buckets.get(BUCKET, f"logos/detection_results/{name}.json"))
        assert doc["project"] == "logos" and doc["version"] == "v1" and doc["source"] == "inbox"
        assert doc["image"] == f"s3://{BUCKET}/logos/processed/images_for_detection/{name}"
        assert doc["input"] == f"s3://{BUCKET}/{INBOX}/{name}"
        assert doc["labels"] and {lab["name"] for lab in doc["labels"]} <= {"amazon_logo", "aws_logo"}
        assert doc["CustomLabels"] == [
            {"Name": x["name"], "Confidence": x["confidence"]} for x in doc["labels"]
        ]
        moved = world.svc.buckets.get(BUCKET, f"logos/processed/images_for_detection/{name}")
        assert moved == photo.read_bytes()
    # bad images are in errors/, each with its reason
    reason = json.loads(world.svc.buckets.get(BUCKET, "logos/errors/images_for_detection/bad.jpg.error.json"))
    assert reason["error"] == "InvalidImage" and reason["key"] == f"{INBOX}/bad.jpg", reason
    tiny = json.loads(world.svc.buckets.get(BUCKET, "logos/errors/images_for_detection/tiny.png.error.json"))
    assert "at least 64 px" in tiny["message"]
    assert world.keys("logos/errors/") == [
        "logos/errors/images_for_detection/bad.jpg",
        "logos/errors/images_for_detection/bad.jpg.error.json",
        "logos/errors/images_for_detection/tiny.png",
        "logos/errors/images_for_detection/tiny.png.error.json",
    ]
    assert world.keys(INBOX) == [f"{INBOX}/.hidden.jpg"]  # hidden names are left alone
    # every detection is in the log, as from the inbox
    logged = world.logged()
    assert len(logged) == 10 and {d.source for d in logged} == {DetectionSource.INBOX}
    assert {d.source_ref for d in logged} == {
        f"s3://{BUCKET}/{INBOX}/{'batch/' if i < 2 else ''}{p.name}" for i, p in enumerate(photos)
    }
    # the ledger has an item per object; a second scan takes nothing
    items = world.svc.repo.list_inbox_items(world.svc.repo.get_project("logos").id, limit=100)
    assert sorted(i.status.value for i in items) == ["done"] * 10 + ["failed"] * 2
    assert not any(i.open for i in items)
    again = world.scan()
    assert again["detected"] == again["failed"] == 0 and len(world.logged()) == 10
    assert len(world.detector.calls) == 12


def test_never_detected_twice_after_a_stop_before_the_move(world: World) -> None:
    photo = inference_images(world)[0]
    world.put(f"{INBOX}/a.png", photo.read_bytes())
    project = world.svc.repo.get_project("logos")
    # an earlier scanner detected it and wrote its result, then stopped before moving it
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    now = world.clock.now()
    item = world.svc.repo.claim_inbox_item(project.id, InboxKind.DETECT, f"{INBOX}/a.png", digest, now, now)
    assert item is not None and item.status is ItemStatus.CLAIMED
    world.svc.repo.update_inbox_item(
        item.id, status=ItemStatus.DONE, moved_to="logos/processed/images_for_detection/a.png"
    )
    report = world.scan()
    assert report["items"][0]["outcome"] == "moved" and report["detected"] == 0
    assert world.detector.calls == [] and world.logged() == []
    assert world.keys(INBOX) == [] and world.keys("logos/processed/") == [
        "logos/processed/images_for_detection/a.png"
    ]


def test_two_scanners_never_take_the_same_image(world: World) -> None:
    photo = inference_images(world)[1]
    world.put(f"{INBOX}/b.png", photo.read_bytes())
    project = world.svc.repo.get_project("logos")
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    now = world.clock.now()
    other = world.svc.repo.claim_inbox_item(project.id, InboxKind.DETECT, f"{INBOX}/b.png", digest, now, now)
    assert other is not None
    # the other scanner is working on it: left alone
    assert world.scan()["waiting"] == 1 and world.detector.calls == []
    # the other scanner stopped: after stale_seconds its claim is taken over
    world.clock.offset += timedelta(minutes=11)
    report = world.scan()
    assert report["detected"] == 1 and len(world.logged()) == 1
    assert [i.id for i in world.svc.repo.list_inbox_items(project.id)] == [other.id]


def test_a_file_too_large_is_refused_unread(world: World) -> None:
    big = b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES)  # a "JPEG" over the limit
    world.put(f"{INBOX}/huge.jpg", big)
    world.put(f"{LABELLED}/aws_logo/huge.jpg", big)
    report = world.scan()
    assert report["failed"] == 2 and world.detector.calls == []
    for inbox in ("images_for_detection", "images_labeled_by_folder/aws_logo"):
        why = json.loads(world.svc.buckets.get(BUCKET, f"logos/errors/{inbox}/huge.jpg.error.json"))
        assert why["error"] == "ImageTooLarge" and "at most 15,728,640 bytes" in why["message"]
        assert world.svc.buckets.exists(BUCKET, f"logos/errors/{inbox}/huge.jpg")


def test_a_move_never_replaces_an_object(world: World) -> None:
    photo = inference_images(world)[4]
    world.put(f"{INBOX}/e.png", photo.read_bytes())
    project = world.svc.repo.get_project("logos")
    now = world.clock.now()
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    item = world.svc.repo.claim_inbox_item(project.id, InboxKind.DETECT, f"{INBOX}/e.png", digest, now, now)
    assert item is not None
    target = "logos/processed/images_for_detection/e.png"
    world.svc.repo.update_inbox_item(item.id, status=ItemStatus.DONE, moved_to=target)
    world.put(target, b"someone else's file")  # the place was taken meanwhile
    [moved] = world.scan()["items"]
    assert moved["moved_to"] == "logos/processed/images_for_detection/e-1.png"
    assert world.svc.buckets.get(BUCKET, target) == b"someone else's file"
    assert world.svc.buckets.get(BUCKET, moved["moved_to"]) == photo.read_bytes()


def test_a_name_used_twice_gets_a_suffix(world: World) -> None:
    first, second = inference_images(world)[:2]
    world.put(f"{INBOX}/same.png", first.read_bytes())
    world.scan()
    world.put(f"{INBOX}/same.png", second.read_bytes())
    world.scan()
    assert world.keys("logos/detection_results/") == [
        "logos/detection_results/same-1.png.json",
        "logos/detection_results/same.png.json",
    ]
    assert (
        world.svc.buckets.get(BUCKET, "logos/processed/images_for_detection/same-1.png")
        == second.read_bytes()
    )
    assert (
        world.svc.buckets.get(BUCKET, "logos/processed/images_for_detection/same.png") == first.read_bytes()
    )
    assert (add_suffix("a/b.tar.gz", 2), add_suffix("noext", 1), add_suffix(".x", 1)) == (
        "a/b.tar-2.gz",
        "noext-1",
        ".x-1",
    )


def test_what_waits_for_a_later_scan(world: World) -> None:
    photo = inference_images(world)[2]
    # just written: it may still be being copied in
    world.clock.offset = timedelta(0)
    world.put(f"{INBOX}/c.png", photo.read_bytes())
    assert world.scan(settings=InboxSettings(settle_seconds=60))["waiting"] == 1
    world.clock.offset = timedelta(minutes=5)
    # no version serving: nothing is taken
    v1 = world.svc.repo.get_version(world.svc.repo.get_project("logos").id, "v1")
    world.svc.repo.update_version(v1.id, status=VersionStatus.STOPPED)
    report = world.scan()
    assert report["waiting"] == 1 and report["notes"] and world.detector.calls == []
    # the server cannot detect now (a version stopping): left in the inbox, tried again next time
    world.svc.repo.update_version(v1.id, status=VersionStatus.RUNNING)
    world.detector.fail = True
    report = world.scan()
    assert report["waiting"] == 1 and report["items"][0]["outcome"] == "waiting"
    assert world.keys(INBOX) == [f"{INBOX}/c.png"]
    world.detector.fail = False
    assert world.scan()["detected"] == 1 and world.keys(INBOX) == []
    # a named version detects even when none is serving
    world.svc.repo.update_version(v1.id, status=VersionStatus.STOPPED)
    world.put(f"{INBOX}/d.png", photo.read_bytes())
    assert world.scan(version="v1")["detected"] == 1


def test_labelled_inbox_joins_train(world: World, services: Services) -> None:
    make_project(services, "fresh")
    events_seen: list[events.Event] = []
    services.bus.subscribe(events_seen.append, [EventType.IMAGES_ADDED])
    photos = {label: sorted((world.logos / label).iterdir()) for label in ("amazon_logo", "aws_logo")}
    for label, files in photos.items():
        for f in files:
            world.put(f"fresh/images_labeled_by_folder/{label}/{f.name}", f.read_bytes())
    world.put("fresh/images_labeled_by_folder/unlabelled.jpg", photos["aws_logo"][1].read_bytes())
    world.put("fresh/images_labeled_by_folder/aws_logo/broken.jpg", b"\xff\xd8\xff not really")
    world.put("fresh/images_labeled_by_folder/aws_logo/copy.jpg", photos["aws_logo"][1].read_bytes())
    report = world.scan("fresh")
    assert (report["added"], report["duplicates"], report["failed"]) == (10, 1, 2), report
    train = services.repo.find_dataset(services.repo.get_project("fresh").id, DatasetType.TRAIN)
    assert train is not None
    entries = services.repo.list_entries(train.id)
    assert len(entries) == 10 and {e.source for e in entries} == {EntrySource.INBOX}
    by_label = {label: sorted(e.source_ref for e in entries if e.labels == (label,)) for label in photos}
    assert by_label == {
        label: sorted(
            f"s3://{BUCKET}/fresh/processed/images_labeled_by_folder/{label}/{f.name}" for f in files
        )
        for label, files in photos.items()
    }
    assert world.keys("fresh/images_labeled_by_folder/") == []
    assert sorted(world.keys("fresh/errors/")) == [
        "fresh/errors/images_labeled_by_folder/aws_logo/broken.jpg",
        "fresh/errors/images_labeled_by_folder/aws_logo/broken.jpg.error.json",
        "fresh/errors/images_labeled_by_folder/unlabelled.jpg",
        "fresh/errors/images_labeled_by_folder/unlabelled.jpg.error.json",
    ]
    why = json.loads(
        world.svc.buckets.get(BUCKET, "fresh/errors/images_labeled_by_folder/unlabelled.jpg.error.json")
    )
    assert "label folder" in why["message"]
    # the copy of an image already added is moved on, not added again
    [dup] = [i for i in report["items"] if i["outcome"] == "duplicate"]
    assert dup["key"].endswith("copy.jpg") and dup["moved_to"].startswith("fresh/processed/")
    [event] = events_seen
    assert event.payload == {
        "dataset": "train",
        "count": 10,
        "labels": {"amazon_logo": 5, "aws_logo": 5},
        "source": "inbox",
    }
    # dropped again later: a duplicate, never a second entry
    world.put("fresh/images_labeled_by_folder/aws_logo/again.jpg", photos["aws_logo"][0].read_bytes())
    assert world.scan("fresh")["duplicates"] == 1 and len(services.repo.list_entries(train.id)) == 10


def test_the_watcher_scans_every_project_and_survives_failures(world: World, services: Services) -> None:
    make_project(services, "empty")
    photo = inference_images(world)[3]
    world.put(f"{INBOX}/w.png", photo.read_bytes())
    watcher = InboxWatcher(services, world.detector, InboxSettings(), interval=0.05).start()
    try:
        world.detector.fail = True  # the first looks cannot detect: the watcher goes on
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while watcher.scans < 2:
            assert datetime.now(UTC) < deadline
            watcher.trigger()
            time.sleep(0.01)
        world.detector.fail = False
        while world.keys(INBOX):
            assert datetime.now(UTC) < deadline
            watcher.trigger()
            time.sleep(0.01)
    finally:
        watcher.stop()
    assert len(world.logged()) == 1
    assert scan_all(services, world.detector) == []  # nothing left anywhere


def test_a_project_named_dot_dot_stored_before_the_rule_is_skipped_with_one_warning(
    world: World, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    services.repo.create_project("..", TaskType.CLASSIFICATION, services.clock.now())  # as an old server did
    world.put(f"{INBOX}/w.png", inference_images(world)[0].read_bytes())
    with caplog.at_level("WARNING", logger="visionloop.inbox"):
        scan_all(services, world.detector)
        scan_all(services, world.detector)
    ours = [r for r in caplog.records if r.name == "visionloop.inbox"]
    assert [r.levelname for r in ours] == ["WARNING"] and "'..'" in ours[0].getMessage()
    assert not any(r.exc_info for r in ours)  # no traceback
    assert not world.keys(INBOX)  # the other projects' inboxes were still scanned
