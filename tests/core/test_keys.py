import pytest

from visionloop.core.keys import check_bucket, check_key, parse_s3_prefix, parse_s3_uri
from visionloop.errors import InvalidKey


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "a\x00b",
        "a\\..\\b",
        "C:/windows",
        "./a",
        "a//b",
        "a/",
        "",
    ],
)
def test_keys_that_escape_or_are_malformed_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


@pytest.mark.parametrize("key", ["a.jpg", "img/a b.jpg", "x/y/z..jpg", "ünïcode/ファイル.png"])
def test_normal_keys_pass(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("name", ["ab", "a/b", "..x", "", "b" * 256, "bad name"])
def test_bad_bucket_names(name: str) -> None:
    with pytest.raises(InvalidKey):
        check_bucket(name)


def test_parse_s3_uri() -> None:
    ref = parse_s3_uri("s3://my-bucket/images/a.jpg")
    assert (ref.bucket, ref.key, ref.uri()) == ("my-bucket", "images/a.jpg", "s3://my-bucket/images/a.jpg")
    for bad in ["http://x/y", "s3://bucket", "s3://bucket/../../etc/passwd", "s3:///key"]:
        with pytest.raises(InvalidKey):
            parse_s3_uri(bad)


def test_parse_s3_prefix() -> None:
    assert parse_s3_prefix("s3://bkt") == ("bkt", "")
    assert parse_s3_prefix("s3://bkt/a/b/") == ("bkt", "a/b/")
    assert parse_s3_prefix("s3://bkt/a/b") == ("bkt", "a/b/")
    with pytest.raises(InvalidKey):
        parse_s3_prefix("s3://bkt/../x/")
