"""Object store on the local disk: ``<root>/<bucket>/<key>``. A bucket is a plain folder, so files copied
in with any tool are visible. Writes are atomic: a temporary file in the same folder is written, fsynced
and renamed over the target, so a reader never sees half an object."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from visionloop.core.keys import check_bucket, check_key, check_prefix
from visionloop.core.ports import ObjectInfo
from visionloop.errors import InvalidKey, ObjectNotFound, StorageError

_TMP_PREFIX = ".tmp-"


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, bucket: str, key: str) -> Path:
        path = self.root / check_bucket(bucket) / check_key(key)
        # belt and braces: a symlink inside the bucket must not lead outside it
        resolved_bucket = (self.root / bucket).resolve()
        if not path.resolve().is_relative_to(resolved_bucket):
            raise InvalidKey(f"object key {key!r} escapes bucket {bucket!r}")
        return path

    def put(self, bucket: str, key: str, data: bytes) -> None:
        path = self._path(bucket, key)
        if path.name.startswith(_TMP_PREFIX):
            raise InvalidKey(f"object names starting with {_TMP_PREFIX!r} are reserved")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(path.parent)
        except OSError as e:
            raise StorageError(f"cannot write s3://{bucket}/{key}: {e.strerror or e}") from e

    def put_many(self, bucket: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Write many objects with two file-system syncs in all instead of one fsync per object: every
        temporary file is written, synced, then renamed into place, then the renames are synced."""
        if len(items) <= 1:
            for key, data in items:
                self.put(bucket, key, data)
            return
        staged: list[tuple[str, Path]] = []
        try:
            for key, data in items:
                path = self._path(bucket, key)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
                staged.append((tmp, path))
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            os.sync()
            for tmp, path in staged:
                os.replace(tmp, path)
            os.sync()
        except OSError as e:
            raise StorageError(f"cannot write to bucket {bucket!r}: {e.strerror or e}") from e
        finally:
            for tmp, _ in staged:
                Path(tmp).unlink(missing_ok=True)

    def get(self, bucket: str, key: str) -> bytes:
        path = self._path(bucket, key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"object s3://{bucket}/{key} does not exist") from None
        except OSError as e:
            raise StorageError(f"cannot read s3://{bucket}/{key}: {e.strerror or e}") from e

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def delete(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ObjectNotFound(f"object s3://{bucket}/{key} does not exist") from None

    def move(self, bucket: str, key: str, new_key: str) -> None:
        """Rename within the bucket: atomic (one file system), whatever the object's size; the folders
        are synced so the rename survives a crash."""
        src, dst = self._path(bucket, key), self._path(bucket, new_key)
        if dst.name.startswith(_TMP_PREFIX):
            raise InvalidKey(f"object names starting with {_TMP_PREFIX!r} are reserved")
        if not src.is_file():
            raise ObjectNotFound(f"object s3://{bucket}/{key} does not exist")
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            _fsync_dir(dst.parent)
            if src.parent != dst.parent:
                _fsync_dir(src.parent)
        except FileNotFoundError:
            raise ObjectNotFound(f"object s3://{bucket}/{key} does not exist") from None
        except OSError as e:
            raise StorageError(f"cannot move s3://{bucket}/{key} to {new_key}: {e.strerror or e}") from e

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order; temporary files are never listed."""
        base = self.root / check_bucket(bucket)
        check_prefix(prefix)
        if not base.is_dir():
            raise ObjectNotFound(f"bucket {bucket!r} does not exist")
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if not start.is_dir():
            return
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            st = (base / key).stat()
            yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def list_buckets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def create_bucket(self, bucket: str) -> None:
        (self.root / check_bucket(bucket)).mkdir(parents=True, exist_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
