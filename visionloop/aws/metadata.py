"""What the AWS API knows about a resource beyond the core's records: its tags, a dataset's status
(CREATE_FAILED and the like: the core imports synchronously and keeps no status) and a model version's
OutputConfig and description. Each is a small JSON document in the internal object store, keyed by the
resource's ARN, so a resource re-created under the same name starts clean."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from visionloop.core.ports import ObjectStore
from visionloop.errors import ObjectNotFound

BUCKET = "aws-metadata"
_lock = threading.Lock()  # read-modify-write of tag documents within this process


@dataclass(frozen=True)
class DatasetState:
    status: str  # Rekognition's DatasetStatus
    message: str
    code: str  # SUCCESS, CLIENT_ERROR or SERVICE_ERROR
    updated: float  # epoch seconds


@dataclass(frozen=True)
class VersionExtras:
    bucket: str  # OutputConfig.S3Bucket
    prefix: str  # OutputConfig.S3KeyPrefix
    description: str | None = None
    manifests: bool = False  # its manifests were written (aws/version_manifests.py)
    auto_create: bool = False  # its test data was split off its training data when it was created


class Metadata:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _key(self, kind: str, arn: str) -> str:
        return f"{kind}/{hashlib.sha256(arn.encode()).hexdigest()}.json"

    def _get(self, kind: str, arn: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self.store.get(BUCKET, self._key(kind, arn)))
        except ObjectNotFound:
            return None
        return doc

    def _put(self, kind: str, arn: str, doc: Mapping[str, Any]) -> None:
        self.store.put(BUCKET, self._key(kind, arn), json.dumps({"arn": arn, **doc}).encode())

    # tags

    def tags(self, arn: str) -> dict[str, str]:
        doc = self._get("tags", arn)
        return dict(doc["tags"]) if doc else {}

    def add_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        with _lock:
            self._put("tags", arn, {"tags": {**self.tags(arn), **tags}})

    def remove_tags(self, arn: str, keys: Iterable[str]) -> None:
        with _lock:
            current = self.tags(arn)
            for key in keys:
                current.pop(key, None)
            self._put("tags", arn, {"tags": current})

    # datasets and versions

    def dataset_state(self, arn: str) -> DatasetState | None:
        doc = self._get("datasets", arn)
        return (
            None if doc is None else DatasetState(doc["status"], doc["message"], doc["code"], doc["updated"])
        )

    def set_dataset_state(self, arn: str, state: DatasetState) -> None:
        self._put("datasets", arn, asdict(state))

    def version_extras(self, arn: str) -> VersionExtras | None:
        doc = self._get("versions", arn)
        if doc is None:
            return None
        return VersionExtras(
            doc["bucket"],
            doc["prefix"],
            doc.get("description"),
            bool(doc.get("manifests", False)),  # versions described before manifests were written
            bool(doc.get("auto_create", False)),
        )

    def set_version_extras(self, arn: str, extras: VersionExtras) -> None:
        self._put("versions", arn, asdict(extras))

    def forget(self, arn: str) -> None:
        """Drop every document of a deleted resource."""
        for kind in ("tags", "datasets", "versions"):
            with contextlib.suppress(ObjectNotFound):
                self.store.delete(BUCKET, self._key(kind, arn))
