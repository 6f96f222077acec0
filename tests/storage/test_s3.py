"""The S3 object store (visionloop/storage/s3.py) against a real S3 protocol server: moto's server, started
once for the session on a free port (ThreadedMotoServer) and emptied before each test. Every test runs in
both mappings: one S3 bucket per store bucket (``s3://``) and every store bucket a prefix inside one S3
bucket (``s3://root/store``). The local store's contract tests (tests/storage/test_files.py) that do not
look at the disk are imported and run here against the S3 store too."""

from __future__ import annotations

import socket
from typing import Any

import boto3
import pytest

from tests.storage.test_files import (  # noqa: F401  (collected here with this module's `store`)
    test_escaping_keys_are_refused_everywhere,
    test_missing_objects_and_buckets,
    test_move_renames_within_the_bucket,
)
from visionloop.errors import InvalidInput, InvalidKey, ObjectNotFound, StorageError
from visionloop.settings import load_settings
from visionloop.storage import open_object_store
from visionloop.storage.s3 import S3ObjectStore, S3Options

ROOT = "root"  # the S3 bucket that holds every store bucket in the prefix mapping


def raw_client(options: S3Options) -> Any:
    """A plain boto3 client on the same server: what a user or another tool sees in S3."""
    return boto3.client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
    )


@pytest.fixture(params=["s3://", f"s3://{ROOT}/store"])
def store(request: pytest.FixtureRequest, s3_options: S3Options) -> S3ObjectStore:
    if request.param != "s3://":
        raw_client(s3_options).create_bucket(Bucket=ROOT)
    opened = open_object_store(request.param, s3_options)
    assert isinstance(opened, S3ObjectStore)
    return opened


def test_objects_round_trip_and_list_in_key_order(store: S3ObjectStore) -> None:
    store.create_bucket("photos")
    store.create_bucket("photos")  # again: no error
    store.put("photos", "2024/cat.jpg", b"abc")
    store.put_many("photos", [("dog.jpg", b"woof"), ("2024/b.jpg", b"b"), ("dog.jpg", b"woof2")])
    assert store.get("photos", "dog.jpg") == b"woof2"
    assert store.exists("photos", "2024/cat.jpg") and not store.exists("photos", "2024")
    listed = list(store.list_objects("photos"))
    assert [(o.key, o.size) for o in listed] == [("2024/b.jpg", 1), ("2024/cat.jpg", 3), ("dog.jpg", 5)]
    assert all(o.modified.tzinfo is not None for o in listed)
    assert [o.key for o in store.list_objects("photos", "2024/")] == ["2024/b.jpg", "2024/cat.jpg"]
    assert [o.key for o in store.list_objects("photos", "do")] == ["dog.jpg"]
    store.create_bucket("empty")
    assert list(store.list_objects("empty")) == []
    assert store.list_buckets() == ["empty", "photos"]
    store.delete("photos", "dog.jpg")
    assert not store.exists("photos", "dog.jpg")


def test_get_with_max_bytes_reads_only_one_byte_more(store: S3ObjectStore) -> None:
    store.put("bk1", "big", bytes(range(256)) * 100)
    store.put("bk1", "empty", b"")
    ranges: list[bytes | None] = []
    store.client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: ranges.append(request.headers.get("Range"))
    )
    assert store.get("bk1", "big", max_bytes=10) == bytes(range(11))
    assert ranges == [b"bytes=0-10"]  # a ranged GET: the server sends only what was asked
    assert store.get("bk1", "big", max_bytes=100_000) == bytes(range(256)) * 100
    assert store.get("bk1", "empty", max_bytes=10) == b""
    assert store.get("bk1", "empty") == b""
    with pytest.raises(ObjectNotFound):
        store.get("bk1", "missing", max_bytes=10)


def test_users_buckets_map_one_to_one_and_the_internal_store_to_prefixes(s3_options: S3Options) -> None:
    s3 = raw_client(s3_options)
    buckets = open_object_store("s3://", s3_options)
    buckets.create_bucket("photos")
    s3.put_object(Bucket="photos", Key="x.jpg", Body=b"theirs")
    s3.put_object(Bucket="photos", Key="folder/", Body=b"")  # a console's folder marker is no object
    assert buckets.get("photos", "x.jpg") == b"theirs"
    assert [o.key for o in buckets.list_objects("photos")] == ["x.jpg"]
    buckets.put("photos", "y.jpg", b"ours")
    assert s3.get_object(Bucket="photos", Key="y.jpg")["Body"].read() == b"ours"

    s3.create_bucket(Bucket="vl-meta")
    internal = open_object_store("s3://vl-meta/deep/store/", s3_options)
    internal.put("images", "ab/cd", b"img")
    assert s3.get_object(Bucket="vl-meta", Key="deep/store/images/ab/cd")["Body"].read() == b"img"
    assert internal.list_buckets() == ["images"]
    assert s3.list_buckets()["Buckets"][0]["Name"] == "photos" and len(s3.list_buckets()["Buckets"]) == 2


def test_large_objects_are_uploaded_and_copied_in_parts(store: S3ObjectStore, s3_options: S3Options) -> None:
    from boto3.s3.transfer import TransferConfig

    part = 5 * 1024 * 1024  # S3's smallest part
    store.transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part)
    data = bytes(range(256)) * (part // 256) * 2 + b"tail"
    store.put("bk1", "big.bin", data)
    bucket, key = store._where("bk1", "big.bin")
    assert raw_client(s3_options).head_object(Bucket=bucket, Key=key)["ETag"].endswith('-3"')  # 3 parts
    store.move("bk1", "big.bin", "moved/big.bin")
    assert store.get("bk1", "moved/big.bin") == data and not store.exists("bk1", "big.bin")


def test_reserved_names_and_bad_buckets_are_refused(store: S3ObjectStore) -> None:
    for call in (
        lambda: store.put("bk1", "a/.tmp-x", b"x"),
        lambda: store.put_many("bk1", [("ok", b"1"), (".tmp-y", b"2")]),
        lambda: store.get("../etc", "x"),
    ):
        with pytest.raises(InvalidKey):
            call()
    assert not store.exists("bk1", "ok")  # put_many checked every key before writing any


def test_an_unreachable_endpoint_is_a_storage_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    store = S3ObjectStore("s3://", S3Options(f"http://127.0.0.1:{port}", "us-east-1", "k", "s"))
    with pytest.raises(StorageError, match="cannot read s3://bk1/x"):
        store.get("bk1", "x")


def test_put_many_writes_concurrently_into_a_bucket_it_creates(store: S3ObjectStore) -> None:
    items = [(f"many/{i:03d}", bytes([i]) * i) for i in range(40)]
    store.put_many("fresh", items)
    assert [(o.key, o.size) for o in store.list_objects("fresh", "many/")] == [(k, len(d)) for k, d in items]
    assert store.get("fresh", "many/039") == bytes([39]) * 39
    store.put_many("fresh", [("same", str(i).encode()) for i in range(20)] + [("other", b"o")])
    assert store.get("fresh", "same") == b"19"  # the last data given for a key, as in sequential writes


def test_the_s3_settings_are_read_and_checked() -> None:
    settings = load_settings(
        environ={"VISIONLOOP_S3_ENDPOINT_URL": "http://minio:9000", "VISIONLOOP_S3_SECRET_ACCESS_KEY": "shh"}
    )
    assert (settings.s3_endpoint_url, settings.s3_secret_access_key) == ("http://minio:9000", "shh")
    assert "shh" not in repr(settings)
    with pytest.raises(InvalidInput, match="s3_endpoint_url"):
        load_settings(environ={"VISIONLOOP_S3_ENDPOINT_URL": "minio:9000"})
