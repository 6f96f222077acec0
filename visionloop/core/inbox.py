"""Watched inboxes (as in the AWS reference build of continuous improvement): ordinary folders of the
workflow bucket (setting ``workflow_bucket``, default ``visionloop``) that a scan takes images from.

    <project>/images_for_detection/<name>               detected with the project's serving version; the
                                                         result is written to
    <project>/detection_results/<name>.json             and the image moved to
    <project>/processed/images_for_detection/<name>
    <project>/images_labeled_by_folder/<label>/<name>   added to the TRAIN dataset with that label, then
                                                         moved to processed/images_labeled_by_folder/
    <project>/errors/<inbox>/<name>                     an image that could not be used, with
    <project>/errors/<inbox>/<name>.error.json          the reason

``<name>`` may contain folders. A name already taken in processed/, detection_results/ or errors/ gets a
``-1``, ``-2`` … before its extension, so nothing is overwritten. Hidden names (a part starting with '.')
are left alone, and so is an object written less than ``settle_seconds`` ago (it may still be being
copied in).

Every object taken is recorded in a ledger (Repository.claim_inbox_item): a scan claims it before
working on it, so two scanners (the server's watcher and ``visionloop workflow scan``) never take the
same object, and an object detected or imported but not yet moved (the process stopped in between) is
only moved by the next scan — never detected or imported twice. A claim left by a scanner that stopped
is taken over after ``stale_seconds``.

A detection that fails because of the image (InvalidInput: not a JPEG/PNG, too large, too small) moves the
image to errors/; one that fails because of the server (no serving version, the version not ready, a unit
that died) leaves it in the inbox for the next scan. A scan never raises for one bad object."""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from visionloop.core import events
from visionloop.core.deployments import serving_version
from visionloop.core.entities import (
    DatasetType,
    EntrySource,
    ImportIssue,
    ModelVersion,
    Prediction,
    Project,
)
from visionloop.core.importing import Candidate, run_import
from visionloop.core.keys import check_bucket
from visionloop.core.ports import ObjectInfo
from visionloop.core.projects import check_project_name, ensure_dataset, get_project
from visionloop.core.records.inbox import (
    InboxItem,
    InboxKind,
    ItemStatus,
)
from visionloop.core.services import Services
from visionloop.errors import (
    ImageTooLarge,
    InvalidInput,
    NotFound,
    ObjectNotFound,
    VisionloopError,
)

log = logging.getLogger("visionloop.inbox")
_SKIPPED: set[str] = set()  # projects whose inbox cannot exist, warned about once per process

DEFAULT_BUCKET = "visionloop"
DETECT_INBOX = "images_for_detection"
LABEL_INBOX = "images_labeled_by_folder"
RESULTS = "detection_results"
PROCESSED = "processed"
ERRORS = "errors"
MAX_PER_SCAN = 1000  # objects taken from one inbox of one project per scan; the rest wait for the next
MAX_IMAGE_BYTES = 15 * 1024 * 1024  # larger objects are refused unread (DetectCustomLabels' S3Object limit)


@dataclass(frozen=True)
class InboxSettings:
    bucket: str = DEFAULT_BUCKET
    settle_seconds: float = 2.0  # an object younger than this may still be being copied in: later
    stale_seconds: float = 600.0  # a claim this old was left by a scanner that stopped: take it over
    max_per_scan: int = MAX_PER_SCAN


# detect(project, version, bucket, key) -> the labels; raises InvalidInput for a bad image
Detector = Callable[[str, ModelVersion, str, str], Sequence[Prediction]]


@dataclass
class ScanReport:
    """What one scan of one project's inboxes did."""

    project: str
    detected: int = 0  # images detected, results written
    added: int = 0  # labelled images added to TRAIN
    duplicates: int = 0  # labelled images already in the project's datasets (moved all the same)
    failed: int = 0  # moved to errors/
    waiting: int = 0  # left for a later scan (settling, claimed by another scanner, no serving version)
    items: list[dict[str, Any]] = field(default_factory=list)  # one per object handled
    notes: list[str] = field(default_factory=list)  # why things wait

    @property
    def handled(self) -> int:
        return self.detected + self.added + self.duplicates + self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "detected": self.detected,
            "added": self.added,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "waiting": self.waiting,
            "items": self.items,
            "notes": self.notes,
        }


def scan_all(
    svc: Services,
    detector: Detector | None,
    settings: InboxSettings | None = None,
    *,
    now: datetime | None = None,
) -> list[ScanReport]:
    """Scan every project's inboxes (the watcher's tick); a project that fails is logged and skipped."""
    settings = settings or InboxSettings()
    if settings.bucket not in svc.buckets.list_buckets():
        return []
    reports = []
    for project in svc.repo.list_projects():
        if not _has_inbox(project.name):
            continue
        try:
            report = scan_inbox(svc, project.name, detector, settings, now=now)
        except NotFound:  # deleted meanwhile
            continue
        except Exception:
            log.exception("inbox: the scan of project %s failed", project.name)
            continue
        if report.handled or report.items:
            reports.append(report)
    return reports


def _has_inbox(project_name: str) -> bool:
    """False, with one warning per process, for a name stored before it was refused ('.', '..'): its
    inbox folders would escape the bucket."""
    try:
        check_project_name(project_name)
    except InvalidInput as exc:
        if project_name not in _SKIPPED:
            _SKIPPED.add(project_name)
            log.warning("inbox: project %r has no inbox: %s", project_name, exc)
        return False
    return True


def scan_inbox(
    svc: Services,
    project_name: str,
    detector: Detector | None,
    settings: InboxSettings | None = None,
    *,
    version: str | None = None,
    now: datetime | None = None,
) -> ScanReport:
    """Take what is waiting in the project's two inboxes (see the module docstring). Without a
    ``detector`` the detection inbox is left alone; ``version`` names the version that detects
    (default: the project's serving version, core.deployments.serving_version)."""
    settings = settings or InboxSettings()
    check_bucket(settings.bucket)
    project = get_project(svc, project_name)
    chosen = svc.repo.get_version(project.id, version) if version is not None else None
    scan = _Scan(svc, project, settings, now or svc.clock.now())
    if settings.bucket not in svc.buckets.list_buckets():
        return scan.report
    if detector is not None:
        scan.detect_all(detector, chosen)
    scan.label_all()
    return scan.report


def list_items(svc: Services, project_name: str, *, limit: int = 100) -> list[InboxItem]:
    """What the project's inboxes took (one item per object handled), newest first."""
    return svc.repo.list_inbox_items(get_project(svc, project_name).id, limit=limit)


def add_suffix(key: str, n: int) -> str:
    """``a/b.jpg`` → ``a/b-2.jpg`` (n ≥ 1); n = 0 is the key itself."""
    if n == 0:
        return key
    head, name = posixpath.split(key)
    stem, dot, ext = name.rpartition(".")
    new = f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}"
    return posixpath.join(head, new) if head else new


@dataclass
class _Waiting:
    key: str
    rel: str
    data: bytes  # empty for an object too large to read
    item: InboxItem
    size: int = 0


class _Scan:
    def __init__(self, svc: Services, project: Project, settings: InboxSettings, now: datetime) -> None:
        self.svc, self.project, self.settings, self.now = svc, project, settings, now
        self.bucket = settings.bucket
        self.report = ScanReport(project.name)

    # --- listing and claiming ----------------------------------------------------------------------

    def _ready(self, inbox: str) -> list[tuple[ObjectInfo, str]]:
        """(object, name below the inbox) of the objects ready to be taken, in key order."""
        prefix = f"{self.project.name}/{inbox}/"
        settled = self.now - timedelta(seconds=self.settings.settle_seconds)
        out: list[tuple[ObjectInfo, str]] = []
        try:
            objects = list(self.svc.buckets.list_objects(self.bucket, prefix))
        except ObjectNotFound:
            return []
        for obj in objects:
            rel = obj.key[len(prefix) :]
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            if obj.modified.astimezone(UTC) > settled:
                self.report.waiting += 1
                continue
            if len(out) >= self.settings.max_per_scan:
                self.report.waiting += 1
                continue
            out.append((obj, rel))
        return out

    def _claim(self, kind: InboxKind, obj: ObjectInfo, rel: str) -> _Waiting | None:
        """Read and claim an object (one too large to be an image is claimed unread, by its name,
        size and time, for _take to refuse)."""
        if obj.size > MAX_IMAGE_BYTES:
            data = b""
            identity = f"{obj.key}\0{obj.size}\0{obj.modified.isoformat()}".encode()
            digest = hashlib.sha256(identity).hexdigest()
        else:
            try:
                data = self.svc.buckets.get(self.bucket, obj.key)
            except ObjectNotFound:  # taken away meanwhile
                return None
            digest = hashlib.sha256(data).hexdigest()
        stale = self.now - timedelta(seconds=self.settings.stale_seconds)
        item = self.svc.repo.claim_inbox_item(self.project.id, kind, obj.key, digest, self.now, stale)
        if item is None:
            self.report.waiting += 1
            return None
        return _Waiting(obj.key, rel, data, item, obj.size)

    def _take(self, kind: InboxKind, inbox: str, obj: ObjectInfo, rel: str) -> _Waiting | None:
        """The claimed object when it is new work; None when it is not ours, was only moved (an
        earlier scan processed it), or was refused for its size."""
        w = self._claim(kind, obj, rel)
        if w is None:
            return None
        if w.item.status is not ItemStatus.CLAIMED:  # processed by an earlier scan: only move it
            self._finish_move(w, inbox, "moved")
            return None
        if w.size > MAX_IMAGE_BYTES:
            limit = f"{MAX_IMAGE_BYTES:,} bytes"
            self._fail(
                w, inbox, ImageTooLarge(f"the file is {w.size:,} bytes; an image may be at most {limit}")
            )
            return None
        return w

    # --- the detection inbox -----------------------------------------------------------------------

    def detect_all(self, detector: Detector, version: ModelVersion | None = None) -> None:
        ready = self._ready(DETECT_INBOX)
        if not ready:
            return
        version = version or serving_version(self.svc, self.project)
        if version is None:  # the images wait (unclaimed) until a version serves
            self.report.waiting += len(ready)
            self.report.notes.append("no version of the project is serving: the detection inbox waits")
            return
        for i, (obj, rel) in enumerate(ready):
            w = self._take(InboxKind.DETECT, DETECT_INBOX, obj, rel)
            if w is not None and not self._detect_one(detector, version, w):
                self.report.waiting += len(ready) - i - 1  # the server cannot detect now: stop here
                return

    def _detect_one(self, detector: Detector, version: ModelVersion, w: _Waiting) -> bool:
        """Detect one image; False when the server could not (the image stays for the next scan)."""
        try:
            labels = detector(self.project.name, version, self.bucket, w.key)
        except InvalidInput as e:  # the image itself: bad bytes, too large, too small
            self._fail(w, DETECT_INBOX, e)
            return True
        except VisionloopError as e:  # the server: not ready, a unit died …: try again next scan
            self._release(w, e.message)
            return False
        except Exception as e:
            log.exception("inbox: detecting s3://%s/%s failed", self.bucket, w.key)
            self._release(w, f"unexpected error: {e!r}")
            return False
        rel = self._free(w.rel, lambda r: [self._processed_key(DETECT_INBOX, r), self._results_key(r)])
        moved_to, results_key = self._processed_key(DETECT_INBOX, rel), self._results_key(rel)
        doc = detection_result(
            self.project.name,
            version.name,
            self.bucket,
            w.key,
            moved_to,
            w.item.content_hash,
            labels,
            self.now,
        )
        self.svc.buckets.put(self.bucket, results_key, json.dumps(doc, indent=1).encode())
        w.item = self.svc.repo.update_inbox_item(
            w.item.id,
            status=ItemStatus.DONE,
            finished_at=self.now,
            result={"result_key": results_key, "version": version.name, "labels": doc["labels"]},
            moved_to=moved_to,
        )
        self.report.detected += 1
        self._finish_move(w, DETECT_INBOX, "detected")
        return True

    # --- the labelled inbox ------------------------------------------------------------------------

    def label_all(self) -> None:
        ready = self._ready(LABEL_INBOX)
        if not ready:
            return
        waiting: list[_Waiting] = []
        for obj, rel in ready:
            w = self._take(InboxKind.LABEL, LABEL_INBOX, obj, rel)
            if w is None:
                continue
            if "/" not in rel:
                self._fail(
                    w, LABEL_INBOX, InvalidInput("the image is not in a label folder (<label>/<name>)")
                )
            else:
                waiting.append(w)
        if waiting:
            self._import(waiting)

    def _import(self, waiting: Sequence[_Waiting]) -> None:
        targets = {}
        for w in waiting:
            rel = self._free(w.rel, lambda r: [self._processed_key(LABEL_INBOX, r)])
            targets[w.key] = self._processed_key(LABEL_INBOX, rel)
        candidates = [
            Candidate(
                w.key,
                f"s3://{self.bucket}/{targets[w.key]}",
                _constant(w.data),
                (w.rel.split("/", 1)[0].strip(),),
                kind="classification",
            )
            for w in waiting
        ]
        train = ensure_dataset(self.svc, self.project, DatasetType.TRAIN)
        report = run_import(self.svc, self.project, train, candidates, source=EntrySource.INBOX)
        issues: dict[str, ImportIssue] = {i.ref: i for i in report.issues}
        added: dict[str, int] = {}
        for w in waiting:
            issue = issues.get(w.key)
            label = w.rel.split("/", 1)[0].strip()
            if issue is not None and issue.code not in ("DUPLICATE", "MERGED"):
                self._fail(w, LABEL_INBOX, InvalidInput(issue.message, code=issue.code))
                continue
            duplicate = issue is not None and issue.code == "DUPLICATE"
            w.item = self.svc.repo.update_inbox_item(
                w.item.id,
                status=ItemStatus.DONE,
                finished_at=self.now,
                result={"label": label, "dataset": "train", "duplicate": duplicate},
                message=issue.message if issue is not None else None,
                moved_to=targets[w.key],
            )
            if duplicate:
                self.report.duplicates += 1
            else:
                self.report.added += 1
                added[label] = added.get(label, 0) + 1
            self._finish_move(w, LABEL_INBOX, "duplicate" if duplicate else "added")
        if added:
            _publish_images_added(self.svc, self.project, added)

    # --- moving ------------------------------------------------------------------------------------

    def _processed_key(self, inbox: str, rel: str) -> str:
        return f"{self.project.name}/{PROCESSED}/{inbox}/{rel}"

    def _results_key(self, rel: str) -> str:
        return f"{self.project.name}/{RESULTS}/{rel}.json"

    def _errors_key(self, inbox: str, rel: str) -> str:
        return f"{self.project.name}/{ERRORS}/{inbox}/{rel}"

    def _free(self, rel: str, keys: Callable[[str], list[str]]) -> str:
        """``rel``, or ``rel`` with the smallest suffix (add_suffix) for which none of ``keys`` exists."""
        n = 0
        while any(self.svc.buckets.exists(self.bucket, k) for k in keys(add_suffix(rel, n))):
            n += 1
        return add_suffix(rel, n)

    def _finish_move(self, w: _Waiting, inbox: str, outcome: str) -> None:
        """Move a processed object to where its item says (or processed/) and close the item. An object
        an earlier scan processed but did not move ("moved") is only moved."""
        item = w.item
        target = item.moved_to or self._processed_key(inbox, w.rel)
        if self.svc.buckets.exists(self.bucket, target):  # taken meanwhile: never replace an object
            head, _, tail = target.rpartition("/")
            target = f"{head}/{self._free(tail, lambda r: [f'{head}/{r}'])}"
        entry: dict[str, Any] = {"key": w.key, "outcome": outcome, "moved_to": target, **item.result}
        if item.message:
            entry["message"] = item.message
        self.report.items.append(entry)
        try:
            self.svc.buckets.move(self.bucket, w.key, target)
        except ObjectNotFound:  # gone meanwhile: nothing left to move
            pass
        except VisionloopError as e:  # the next scan tries again (the item stays open)
            log.error("inbox: cannot move s3://%s/%s to %s: %s", self.bucket, w.key, target, e.message)
            entry["move_error"] = e.message
            return
        self.svc.repo.update_inbox_item(item.id, open_key=None, moved_to=target)

    def _fail(self, w: _Waiting, inbox: str, error: VisionloopError) -> None:
        """Move an object that cannot be used to errors/, with a reason file next to it."""
        rel = self._free(
            w.rel, lambda r: [self._errors_key(inbox, r), self._errors_key(inbox, r) + ".error.json"]
        )
        target = self._errors_key(inbox, rel)
        code = str(error.details.get("code") or type(error).__name__)
        reason = {
            "key": w.key,
            "bucket": self.bucket,
            "error": code,
            "message": error.message,
            "at": self.now.astimezone(UTC).isoformat(),
        }
        try:
            self.svc.buckets.put(self.bucket, f"{target}.error.json", json.dumps(reason, indent=1).encode())
        except VisionloopError as e:
            log.error("inbox: cannot write the reason for s3://%s/%s: %s", self.bucket, w.key, e.message)
        w.item = self.svc.repo.update_inbox_item(
            w.item.id,
            status=ItemStatus.FAILED,
            finished_at=self.now,
            message=error.message,
            result={"error": code, "reason_key": f"{target}.error.json"},
            moved_to=target,
        )
        log.warning("inbox: s3://%s/%s cannot be used: %s", self.bucket, w.key, error.message)
        self.report.failed += 1
        self._finish_move(w, inbox, "failed")

    def _release(self, w: _Waiting, message: str) -> None:
        """Leave the object in the inbox for the next scan (the item is closed with the reason)."""
        self.svc.repo.update_inbox_item(
            w.item.id, status=ItemStatus.FAILED, finished_at=self.now, message=message, open_key=None
        )
        self.report.waiting += 1
        self.report.items.append({"key": w.key, "outcome": "waiting", "message": message})


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def detection_result(
    project: str,
    version: str,
    bucket: str,
    key: str,
    moved_to: str,
    digest: str,
    labels: Sequence[Prediction],
    now: datetime,
) -> dict[str, Any]:
    """The JSON written to detection_results/: our labels and DetectCustomLabels' ``CustomLabels``."""
    return {
        "project": project,
        "version": version,
        "source": "inbox",
        "image": f"s3://{bucket}/{moved_to}",
        "input": f"s3://{bucket}/{key}",
        "content_hash": digest,
        "detected_at": now.astimezone(UTC).isoformat(),
        "labels": [{"name": p.label, "confidence": p.confidence} for p in labels],
        "CustomLabels": [{"Name": p.label, "Confidence": p.confidence} for p in labels],
    }


def _publish_images_added(svc: Services, project: Project, added: Mapping[str, int]) -> None:
    """The images_added event (core.events); a failure is logged, never raised."""
    try:
        events.publish(
            svc,
            project,
            events.EventType.IMAGES_ADDED,
            {"dataset": "train", "count": sum(added.values()), "labels": dict(added), "source": "inbox"},
        )
    except VisionloopError as e:
        log.warning("inbox: the images_added event could not be published: %s", e.message)


__all__ = [
    "DEFAULT_BUCKET",
    "DETECT_INBOX",
    "ERRORS",
    "LABEL_INBOX",
    "PROCESSED",
    "RESULTS",
    "Detector",
    "InboxItem",
    "InboxKind",
    "InboxSettings",
    "ItemStatus",
    "ScanReport",
    "add_suffix",
    "detection_result",
    "scan_all",
    "scan_inbox",
]
