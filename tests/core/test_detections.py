"""The detection log on a real SQLite file and object store: the writer thread's batches, images kept
once by content hash, queries by time, label, confidence, source and version with cursor pagination,
retention, a full queue, a deleted project, and what recording costs the detection path."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import image_bytes, make_project, unique_colour
from visionloop.bootstrap import build_detection_log
from visionloop.core import detections, events
from visionloop.core.detections import (
    Detected,
    DetectionFilter,
    DetectionSource,
    Retention,
    list_detections,
)
from visionloop.core.entities import Box, Prediction
from visionloop.core.images import IMAGES_BUCKET, image_key, load_image
from visionloop.core.parameters import update_parameters
from visionloop.core.projects import delete_project
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound
from visionloop.settings import load_settings
from visionloop.workflows.detection_log import DetectionLog

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@pytest.fixture
def clock(services: Services) -> Clock:
    clock = Clock()
    services.clock = clock
    make_project(services, "logos")
    make_project(services, "other")
    return clock


def detected(
    i: int,
    project: str = "logos",
    p: float = 0.9,
    source: DetectionSource = DetectionSource.API,
    version: str = "v1",
    image: bytes | None = None,
) -> Detected:
    """A detection of an image of its own whose top label is aws (p) or amazon (1 - p)."""
    probs = {"aws": p, "amazon": round(1 - p, 6)}
    labels = [Prediction(label, round(100 * q, 3)) for label, q in probs.items() if q >= 0.5]
    data = image if image is not None else image_bytes(color=unique_colour(i))
    return Detected(project, version, data, probs, labels, source)


def all_pages(svc: Services, where: DetectionFilter, limit: int) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = list_detections(svc, "logos", where, limit=limit, cursor=cursor)
        pages.append([d.id for d in page.detections])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_the_writer_logs_every_detection_with_its_image(services: Services, clock: Clock) -> None:
    log = DetectionLog(services, batch=4)
    same = image_bytes(color=(1, 2, 3))
    for i in range(10):
        log.record(detected(i, image=same if i < 3 else None))
        clock.advance(seconds=1)
    assert log.flush(10)
    assert log.stats().logged == 10 and log.stats().pending == 0 and log.stats().dropped == 0
    page = list_detections(services, "logos", limit=100)
    assert [d.detected_at for d in page.detections] == [T0 + timedelta(seconds=s) for s in range(9, -1, -1)]
    first = page.detections[-1]
    assert (first.project, first.version, first.source) == ("logos", "v1", DetectionSource.API)
    assert first.labels == (Prediction("aws", 90.0),) and (first.top_label, first.top_confidence) == (
        "aws",
        90.0,
    )
    assert first.probabilities == (("aws", 0.9), ("amazon", 0.1))
    assert load_image(services.store, first.content_hash) == same  # stored once, by content hash
    assert len({d.content_hash for d in page.detections}) == 8
    stored = list(services.store.list_objects(IMAGES_BUCKET))
    assert {o.key for o in stored} == {image_key(d.content_hash) for d in page.detections}
    log.stop()
    log.record(detected(99))  # after close: dropped, never an error
    assert log.stats().dropped == 1


def test_queries_filter_and_page(services: Services, clock: Clock) -> None:
    log = DetectionLog(services)
    # 30 detections one minute apart: confidences 0.41 .. 0.99, sources and versions alternating
    for i in range(30):
        source = DetectionSource.INBOX if i % 3 == 0 else DetectionSource.AWS
        log.record(detected(i, p=0.41 + 0.02 * i, source=source, version="v2" if i >= 20 else "v1"))
        clock.advance(minutes=1)
    log.record(detected(100, project="other"))
    log.stop()

    def ids(**kw: object) -> list[int]:
        page = list_detections(services, "logos", DetectionFilter(**kw), limit=1000)  # type: ignore[arg-type]
        return [d.id for d in page.detections]

    everything = ids()
    assert len(everything) == 30 and everything == sorted(everything, reverse=True)
    # time range: [since, until)
    window = ids(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=10))
    assert len(window) == 5 and window == everything[20:25]
    naive = ids(since=datetime(2026, 3, 1, 9, 5), until=datetime(2026, 3, 1, 9, 10))
    assert naive == window  # a time without a zone is UTC
    # a label: only detections that returned it; its confidence range
    aws = ids(label="aws")
    assert len(aws) == 30 - 5  # p = 0.41 .. 0.49 returned amazon instead
    amazon = ids(label="amazon")
    assert len(amazon) == 5 and set(amazon).isdisjoint(aws)
    assert len(ids(label="aws", min_confidence=80, max_confidence=90)) == 5  # 0.81, 0.83 … 0.89
    assert ids(label="nothing") == []
    # without a label the range is on the top confidence (the model's best guess)
    low = ids(max_confidence=55)
    assert len(low) == 6 and ids(min_confidence=95) == everything[:3]  # 0.51 … 0.55; 0.95 …
    assert len(ids(source=DetectionSource.INBOX)) == 10 and len(ids(version="v2")) == 10
    assert ids(label="aws", source=DetectionSource.INBOX, version="v2") == [
        d for d in everything[:10] if d in ids(source=DetectionSource.INBOX)
    ]
    # pages: every detection once, in order, whatever the page size
    for limit in (1, 7, 30, 31):
        pages = all_pages(services, DetectionFilter(), limit)
        assert [i for page in pages for i in page] == everything
        assert all(len(p) == limit for p in pages[:-1])
    pages = all_pages(services, DetectionFilter(label="aws", min_confidence=60), 4)
    assert [i for page in pages for i in page] == ids(label="aws", min_confidence=60)
    # the other project's detections are its own
    assert len(list_detections(services, "other").detections) == 1


@pytest.mark.parametrize(
    ("kwargs", "where", "message"),
    [
        ({}, DetectionFilter(min_confidence=-1), "min_confidence"),
        ({}, DetectionFilter(max_confidence=100.5), "max_confidence"),
        ({}, DetectionFilter(min_confidence=60, max_confidence=50), "greater than"),
        ({}, DetectionFilter(since=T0, until=T0), "earlier"),
        ({}, DetectionFilter(label=" "), "label"),
        ({}, DetectionFilter(source="mail"), "unknown detection source"),  # type: ignore[arg-type]
        ({"limit": 0}, None, "limit"),
        ({"limit": 1001}, None, "limit"),
        ({"cursor": "not-a-cursor"}, None, "cursor"),
        ({"cursor": detections.encode_cursor(1)[:-2] + "!!"}, None, "cursor"),
    ],
)
def test_bad_queries_are_refused(
    services: Services, clock: Clock, kwargs: dict[str, object], where: DetectionFilter | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        list_detections(services, "logos", where, **kwargs)  # type: ignore[arg-type]


def test_unknown_project_and_detection(services: Services, clock: Clock) -> None:
    with pytest.raises(NotFound):
        list_detections(services, "ghost")
    log = DetectionLog(services)
    log.record(detected(1, project="other"))
    log.stop()
    [d] = list_detections(services, "other").detections
    assert detections.get_detection(services, "other", d.id) == d
    with pytest.raises(NotFound):
        detections.get_detection(services, "logos", d.id)  # another project's
    with pytest.raises(NotFound):
        detections.get_detection(services, "logos", 9999)


def test_retention_by_age_and_by_count(services: Services, clock: Clock) -> None:
    log = DetectionLog(services)
    for i in range(10):
        log.record(detected(i))
        log.record(detected(100 + i, project="other"))
        clock.advance(days=1)
    log.stop()
    assert detections.prune_detections(services, Retention()) == 0  # the default keeps everything
    # older than 3.5 days (now is T0 + 10 days): the first 7 days' go
    assert detections.prune_detections(services, Retention(days=3.5)) == 14
    assert len(list_detections(services, "logos").detections) == 3
    assert detections.prune_detections(services, Retention(max_rows=2)) == 2
    kept = list_detections(services, "logos").detections
    assert [d.detected_at for d in kept] == [T0 + timedelta(days=9), T0 + timedelta(days=8)]
    assert len(list_detections(services, "other").detections) == 2
    # the writer applies its retention itself
    log = DetectionLog(services, retention=Retention(max_rows=1), prune_seconds=0)
    log.record(detected(50))
    log.flush()
    deadline = time.monotonic() + 10
    while len(list_detections(services, "logos").detections) > 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    log.stop()


def test_a_full_queue_drops_and_never_blocks(services: Services, clock: Clock) -> None:
    full = DetectionLog(services, max_pending=0)  # a queue that is always full
    start = time.perf_counter()
    for i in range(3):
        full.record(detected(i))
    assert time.perf_counter() - start < 1
    assert full.stats().dropped == 3 and full.stats().logged == 0
    small = DetectionLog(services, max_pending_bytes=10)  # images larger than the byte budget
    small.record(detected(9))
    assert small.stats().dropped == 1
    for log in (full, small):
        log.stop()
    assert list_detections(services, "logos").detections == []


def test_detections_of_a_deleted_project_are_left_out(services: Services, clock: Clock) -> None:
    log = DetectionLog(services)
    log.record(detected(1, project="other"))
    log.flush()
    delete_project(services, "other")
    log.record(detected(2, project="other"))  # the writer still knows its id
    log.record(detected(3))
    log.record(detected(4, project="never"))
    log.stop()
    stats = log.stats()
    assert (stats.logged, stats.failed) == (2, 2)  # the deleted and the unknown project's
    assert len(list_detections(services, "logos").detections) == 1


def test_recording_costs_the_detection_path_microseconds(services: Services, clock: Clock) -> None:
    """What DetectionLog.record adds to one detection (the detection path's only cost), measured
    while the writer works through the same detections on its thread."""
    log = DetectionLog(services)
    items = [detected(i) for i in range(2000)]
    costs = []
    for d in items:
        start = time.perf_counter()
        log.record(d)
        costs.append(time.perf_counter() - start)
    assert log.flush(60)
    log.stop()
    assert log.stats().logged == 2000
    median, p99 = statistics.median(costs), sorted(costs)[int(0.99 * len(costs))]
    print(f"record(): median {1e6 * median:.1f} µs, p99 {1e6 * p99:.1f} µs")
    assert median < 0.001  # far under 1 ms, even on a loaded machine


def test_detection_events_only_for_projects_that_want_them(services: Services, clock: Clock) -> None:
    update_parameters(services, "logos", {"detection_events_enabled": True}, changed_by="test")
    log = build_detection_log(services, load_settings({"data_dir": "unused"}, environ={}))
    for i in range(3):
        log.record(detected(i, source=DetectionSource.INBOX))
        log.record(detected(10 + i, project="other"))
    log.stop()
    sent = events.list_events(services, "logos", type="detection")
    logged = {d.id: d for d in list_detections(services, "logos").detections}
    assert len(sent) == 3 and events.list_events(services, "other", type="detection") == []
    for event in sent:
        d = logged[event.payload["detection_id"]]
        assert event.payload == {
            "detection_id": d.id,
            "version": "v1",
            "labels": [{"name": "aws", "confidence": 90.0}],
            "source": "inbox",
            "image": d.content_hash,
            "source_ref": None,
        }
        assert event.created_at == d.detected_at


def test_a_detectors_boxes_are_logged_and_queried_by_label(services: Services, clock: Clock) -> None:
    box = Box("aws", 0.1, 0.2, 0.3, 0.4)
    labels = [Prediction("aws", 91.0, box), Prediction("aws", 55.5, Box("aws", 0.6, 0.5, 0.2, 0.2))]
    log = DetectionLog(services, batch=4)
    log.record(
        Detected("logos", "v1", image_bytes(color=(9, 9, 9)), {"aws": 0.91}, labels, DetectionSource.API)
    )
    assert log.flush(10)
    [found] = list_detections(
        services, "logos", DetectionFilter(label="aws", min_confidence=90), limit=10
    ).detections
    assert found.labels == tuple(labels)  # found by its best box: a label's best confidence is indexed
    assert found.to_dict()["labels"][0] == {
        "name": "aws",
        "confidence": 91.0,
        "box": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4},
    }
    log.stop()
