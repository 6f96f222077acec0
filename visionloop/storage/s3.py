"""Object store on S3 or an S3-compatible server (MinIO, Ceph, moto), through boto3 (the s3 extra).

How the store's buckets map onto S3, chosen by the URL (``store_url`` / ``buckets_url``):

- ``s3://`` (no bucket): one S3 bucket per store bucket, 1:1, so the product's ``s3://photos/x.jpg`` is
  the S3 object ``x.jpg`` of the S3 bucket ``photos``. Meant for ``buckets_url`` (users' own buckets).
- ``s3://BUCKET`` or ``s3://BUCKET/PREFIX``: every store bucket is the prefix ``[PREFIX/]<bucket>/``
  inside the one S3 bucket ``BUCKET`` (which must exist). Meant for ``store_url`` (the internal store's
  ``images``, ``models``… buckets), so the product needs a single S3 bucket of its own. A bucket made
  by ``create_bucket`` there is marked by an empty object ``[PREFIX/]<bucket>/`` (what the S3 consoles
  write for a folder), so an empty bucket is listed and exists.

Large objects are never read whole where the port allows it: ``get`` with ``max_bytes`` is a ranged GET
of ``max_bytes + 1`` bytes; ``put`` goes through boto3's managed transfer, which uploads in parts above
``MULTIPART_THRESHOLD``; ``move`` is a managed (multipart when large) server-side copy, then a delete, so
it is not atomic the way a local rename is: a reader may briefly see the object under both keys."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from visionloop.core.keys import check_bucket, check_key, check_prefix
from visionloop.core.ports import ObjectInfo
from visionloop.errors import InvalidKey, ObjectNotFound, StorageError, Unavailable

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

MULTIPART_THRESHOLD = 16 * 1024 * 1024  # bytes; parts of the same size above it
PUT_THREADS = 8  # concurrent PUTs of one put_many (boto3 clients are thread-safe; its pool holds 10)
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_TMP_PREFIX = ".tmp-"  # reserved by the local store for its half-written files; refused here too, so an
# object written to S3 can always be copied to a local store


@dataclass(frozen=True)
class S3Options:
    """Where the S3 API is and who we are there; empty values fall back to boto3's own defaults (the
    AWS_* environment variables, ~/.aws/config and credentials, an instance role)."""

    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://`` → ("", ""): one S3 bucket per store bucket; ``s3://b/p`` → ("b", "p/")."""
    if not url.startswith("s3://"):
        raise StorageError(f"{url!r} is not an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        return "", ""
    prefix = prefix.strip("/")
    return check_bucket(bucket), (check_key(prefix) + "/" if prefix else "")


class S3ObjectStore:
    def __init__(self, url: str, options: S3Options | None = None, client: Any = None) -> None:
        self.url = url
        self.root_bucket, self.root_prefix = parse_s3_url(url)
        self.client = client if client is not None else _client(options or S3Options())
        from boto3.s3.transfer import TransferConfig

        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
        )

    # where a store bucket and key live in S3
    def _where(self, bucket: str, key: str = "") -> tuple[str, str]:
        check_bucket(bucket)
        if not self.root_bucket:
            return bucket, key
        return self.root_bucket, f"{self.root_prefix}{bucket}/{key}"

    def _name(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Like a local folder, a bucket that is not there yet is created by its first object."""
        s3_bucket, s3_key = self._where(bucket, _writable(key))
        with self._errors(f"cannot write {self._name(bucket, key)}"):
            try:
                self.client.upload_fileobj(io.BytesIO(data), s3_bucket, s3_key, Config=self.transfer)
            except _client_error() as e:
                if self.root_bucket or _code(e) != "NoSuchBucket":
                    raise
                self.create_bucket(bucket)
                self.client.upload_fileobj(io.BytesIO(data), s3_bucket, s3_key, Config=self.transfer)

    def put_many(self, bucket: str, items: Sequence[tuple[str, bytes]]) -> None:
        """One PUT per object, ``PUT_THREADS`` at a time (S3 has no batch write; a PUT's latency, not
        its bandwidth, is what an import of many small images waits for). Every key is checked first; a
        key given twice gets its last data, as when the objects are written one after the other."""
        latest = {_writable(key): data for key, data in items}
        if len(latest) <= 1:
            for key, data in latest.items():
                self.put(bucket, key, data)
            return
        with ThreadPoolExecutor(min(PUT_THREADS, len(latest)), thread_name_prefix="s3-put") as pool:
            for _ in pool.map(lambda item: self.put(bucket, *item), latest.items()):
                pass

    def get(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with ``max_bytes``, a ranged GET of at most ``max_bytes + 1`` of them."""
        s3_bucket, s3_key = self._where(bucket, check_key(key))
        args: dict[str, Any] = {"Bucket": s3_bucket, "Key": s3_key}
        if max_bytes is not None:
            args["Range"] = f"bytes=0-{max_bytes}"
        with self._errors(f"cannot read {self._name(bucket, key)}"):
            try:
                response = self.client.get_object(**args)
            except _client_error() as e:
                if _code(e) != "InvalidRange":  # a range of an empty object: it exists, and is empty
                    raise
                self.client.head_object(Bucket=s3_bucket, Key=s3_key)
                return b""
            body = response["Body"]
            try:
                return bytes(body.read() if max_bytes is None else body.read(max_bytes + 1))
            finally:
                body.close()

    def exists(self, bucket: str, key: str) -> bool:
        s3_bucket, s3_key = self._where(bucket, check_key(key))
        try:
            with self._errors(f"cannot look up {self._name(bucket, key)}"):
                self.client.head_object(Bucket=s3_bucket, Key=s3_key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, bucket: str, key: str) -> None:
        """ObjectNotFound when there is none (S3's DELETE itself succeeds on a missing key)."""
        s3_bucket, s3_key = self._where(bucket, check_key(key))
        with self._errors(f"cannot delete {self._name(bucket, key)}"):
            self.client.head_object(Bucket=s3_bucket, Key=s3_key)
            self.client.delete_object(Bucket=s3_bucket, Key=s3_key)

    def move(self, bucket: str, key: str, new_key: str) -> None:
        """A server-side copy (multipart for a large object), then the delete of the old key."""
        s3_bucket, src = self._where(bucket, check_key(key))
        _, dst = self._where(bucket, _writable(new_key))
        with self._errors(f"cannot move {self._name(bucket, key)} to {new_key}"):
            self.client.copy({"Bucket": s3_bucket, "Key": src}, s3_bucket, dst, Config=self.transfer)
            self.client.delete_object(Bucket=s3_bucket, Key=src)

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order (S3 lists in UTF-8 byte order, which is
        code-point order); "folder" marker objects (keys ending in '/') are no objects."""
        s3_bucket, s3_prefix = self._where(bucket, check_prefix(prefix))
        skip = len(s3_prefix) - len(prefix)
        if self.root_bucket and not self._bucket_exists(bucket):
            raise ObjectNotFound(f"bucket {bucket!r} does not exist")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix=s3_prefix)
        with self._errors(f"cannot list bucket {bucket!r}", bucket_level=True):
            for page in pages:
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith("/"):
                        yield ObjectInfo(obj["Key"][skip:], obj["Size"], obj["LastModified"])

    def list_buckets(self) -> list[str]:
        with self._errors("cannot list buckets"):
            if not self.root_bucket:
                return sorted(b["Name"] for b in self.client.list_buckets().get("Buckets", []))
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.root_bucket, Prefix=self.root_prefix, Delimiter="/"
            )
            found = [
                p["Prefix"][len(self.root_prefix) : -1]
                for page in pages
                for p in page.get("CommonPrefixes", [])
            ]
        return sorted(name for name in found if not name.startswith("."))

    def create_bucket(self, bucket: str) -> None:
        s3_bucket, marker = self._where(bucket)
        with self._errors(f"cannot create bucket {bucket!r}"):
            if self.root_bucket:
                self.client.put_object(Bucket=s3_bucket, Key=marker, Body=b"")
                return
            args: dict[str, Any] = {"Bucket": s3_bucket}
            region = self.client.meta.region_name
            if region and region != "us-east-1":  # us-east-1 refuses its own name as a constraint
                args["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self.client.create_bucket(**args)
            except _client_error() as e:
                if _code(e) != "BucketAlreadyOwnedByYou":  # BucketAlreadyExists: someone else's
                    raise

    def _bucket_exists(self, bucket: str) -> bool:
        """In one shared S3 bucket: the marker, or any object below the bucket's prefix."""
        s3_bucket, s3_prefix = self._where(bucket)
        with self._errors(f"cannot list bucket {bucket!r}"):
            page = self.client.list_objects_v2(Bucket=s3_bucket, Prefix=s3_prefix, MaxKeys=1)
        return bool(page.get("KeyCount", 0))

    def _errors(self, what: str, bucket_level: bool = False) -> _ErrorMap:
        return _ErrorMap(what, bucket_level)


class _ErrorMap:
    """Turns boto3's errors into the product's: a missing key or bucket is ObjectNotFound, anything else
    (refused credentials, an unreachable endpoint) StorageError naming the object."""

    def __init__(self, what: str, bucket_level: bool) -> None:
        self.what, self.bucket_level = what, bucket_level

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        from botocore.exceptions import BotoCoreError

        if error is None or not isinstance(error, BotoCoreError | _client_error()):
            return
        if isinstance(error, _client_error()) and _code(error) in _MISSING:
            raise ObjectNotFound(f"{self.what}: it does not exist") from None
        raise StorageError(f"{self.what}: {error}") from error


def _writable(key: str) -> str:
    if check_key(key).rsplit("/", 1)[-1].startswith(_TMP_PREFIX):
        raise InvalidKey(f"object names starting with {_TMP_PREFIX!r} are reserved")
    return key


def _client_error() -> type[ClientError]:
    from botocore import exceptions

    client_error: type[ClientError] = exceptions.ClientError
    return client_error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _client(options: S3Options) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise Unavailable("the S3 object store needs boto3: pip install 'visionloop[s3]'") from None
    credentials = {}
    if options.access_key_id or options.secret_access_key:
        credentials = {
            "aws_access_key_id": options.access_key_id,
            "aws_secret_access_key": options.secret_access_key,
        }
    return boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint_url or None,
        region_name=options.region or None,
        config=Config(retries={"mode": "standard"}),
        **credentials,
    )
