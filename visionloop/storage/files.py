"""Object store on the local disk: ``<root>/<bucket>/<key>``. A bucket is a plain folder, so files copied
in with any tool are visible. Writes are atomic: a temporary file in the same folder is written, fsynced
and renamed over the target, so a reader never sees half an object.

Every path is resolved and must stay inside the resolved root: a bucket folder that is a link leading out
of the root, or a key that leads out of its bucket through a link, is refused for reading, writing and
listing alike. Only regular files are objects: a FIFO, a device or a socket placed in a bucket is never
opened for reading (it could block the reader or never end)."""

from __future__ import annotations

import os
import stat
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

    def _bucket_path(self, bucket: str) -> Path:
        """The bucket's folder, resolved; InvalidKey when it is a link that leads outside the root."""
        root = self.root.resolve()
        path = (root / check_bucket(bucket)).resolve()
        if path.parent != root:
            raise InvalidKey(f"bucket {bucket!r} is a link that leads outside the buckets folder")
        return path

    def _path(self, bucket: str, key: str) -> Path:
        base = self._bucket_path(bucket)
        path = base / check_key(key)
        # a link inside the bucket (a folder or the object itself) must not lead outside it
        if not path.resolve().is_relative_to(base):
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

    def get(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes. With ``max_bytes`` at most ``max_bytes + 1`` bytes are read, so a caller
        tells an object over its limit from one within it without reading all of it."""
        path = self._path(bucket, key)
        missing = ObjectNotFound(f"object s3://{bucket}/{key} does not exist")
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the open, a device never end
                raise missing
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the stat
                    raise missing
                return f.read() if max_bytes is None else f.read(max_bytes + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise missing from None
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
        base = self._bucket_path(bucket)
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
            path = base / key
            if not path.resolve().is_relative_to(base):  # a link out of the bucket is no object of it
                continue
            try:
                st = path.stat()
            except OSError:  # removed meanwhile, or a dangling link
                continue
            if stat.S_ISREG(st.st_mode):
                yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def list_buckets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        root = self.root.resolve()
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.resolve().parent == root
        )

    def create_bucket(self, bucket: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._bucket_path(bucket).mkdir(exist_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
