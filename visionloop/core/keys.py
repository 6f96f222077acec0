"""Bucket names, object keys and s3:// references. Keys that escape their bucket are refused
everywhere: every adapter and every import calls these checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from visionloop.errors import InvalidKey

_BUCKET = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-_]{2,254}$")
MAX_KEY_LENGTH = 1024


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def check_bucket(name: str) -> str:
    """Return the bucket name if it is valid (3..255 of [0-9A-Za-z.-_], as Rekognition's S3Object)."""
    if not isinstance(name, str) or not _BUCKET.match(name) or ".." in name:
        raise InvalidKey(f"invalid bucket name {name!r}: use 3-255 letters, digits, '.', '-' or '_'")
    return name


def check_key(key: str) -> str:
    """Return the key if it stays inside its bucket: no '..' part, not absolute, no NUL or backslash."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("object key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"object key is longer than {MAX_KEY_LENGTH} characters")
    if "\x00" in key:
        raise InvalidKey(f"object key {key!r} contains a NUL character")
    if "\\" in key:
        raise InvalidKey(f"object key {key!r} contains a backslash")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise InvalidKey(f"object key {key!r} is an absolute path")
    parts = key.split("/")
    if any(p in ("..", ".") for p in parts):
        raise InvalidKey(f"object key {key!r} escapes its bucket")
    if any(p == "" for p in parts[:-1]) or parts[-1] == "":
        raise InvalidKey(f"object key {key!r} has an empty path segment")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key-like string that may end in '/'."""
    if prefix == "":
        return prefix
    check_key(prefix.rstrip("/") or "x")
    return prefix


def parse_s3_uri(uri: str) -> ObjectRef:
    """Parse ``s3://bucket/key`` into a checked ObjectRef."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InvalidKey(f"{uri!r} is not an s3://bucket/key reference")
    rest = uri[len("s3://") :]
    bucket, sep, key = rest.partition("/")
    if not sep:
        raise InvalidKey(f"{uri!r} has no object key after the bucket")
    return ObjectRef(check_bucket(bucket), check_key(key))


def parse_s3_prefix(uri: str) -> tuple[str, str]:
    """Parse ``s3://bucket`` or ``s3://bucket/prefix/`` into (bucket, prefix ending in '/' or empty)."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InvalidKey(f"{uri!r} is not an s3://bucket/prefix/ reference")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    check_bucket(bucket)
    prefix = prefix.strip("/")
    if prefix:
        check_key(prefix)
        prefix += "/"
    return bucket, prefix
