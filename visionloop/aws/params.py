"""Request parameters, checked as the Rekognition model constrains them. botocore checks only required
members, types and minimums before sending; the server checks the rest (maximums, patterns, enums).

A value of the wrong JSON type is a SerializationException (as AWS answers it); a value that breaks a
constraint is an InvalidParameterException whose message follows AWS's validation wording."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from visionloop.aws.exceptions import InvalidParameterException, SerializationException
from visionloop.core.keys import ObjectRef

NAME = re.compile(r"^[a-zA-Z0-9_.\-]+$")  # project and version names
BUCKET = re.compile(r"^[0-9A-Za-z.\-_]*$")
# tag keys and values: Unicode letters, spaces, digits and _.:/=+-@ (AWS's \p{L}\p{Z}\p{N}_.:/=+\-@)
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")
MAX_TAGS = 200
NON_FINITE = ("NaN", "Infinity", "-Infinity")


def _member(path: str) -> str:
    """AWS names members in validation messages in lowerCamelCase: ``outputConfig.s3Bucket``."""
    return ".".join(p[:1].lower() + p[1:] for p in path.split("."))


def invalid(path: str, value: object, constraint: str) -> InvalidParameterException:
    shown = value if isinstance(value, str | int | float) else type(value).__name__
    return InvalidParameterException(
        f"1 validation error detected: Value '{shown}' at '{_member(path)}' failed to satisfy constraint: "
        f"{constraint}"
    )


class Params:
    """Typed, checked access to one JSON object of the request (or a structure nested in it)."""

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        self.data = data
        self.path = path

    def _path(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _get(self, name: str, types: type | tuple[type, ...], required: bool, kind: str) -> Any:
        value = self.data.get(name)
        if value is None:
            if required:
                raise invalid(self._path(name), "null", "Member must not be null")
            return None
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise SerializationException(f"'{self._path(name)}' must be {kind}")
        if not isinstance(value, types):
            raise SerializationException(f"'{self._path(name)}' must be {kind}")
        return value

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        value: str | None = self._get(name, str, required, "a string")
        if value is not None:
            check_string(self._path(name), value, min_len, max_len, pattern)
        return value

    def required_string(
        self,
        name: str,
        *,
        min_len: int = 1,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> str:
        value = self.string(name, required=True, min_len=min_len, max_len=max_len, pattern=pattern)
        assert value is not None
        return value

    def arn(self, name: str) -> str:
        """A required ARN member (20..2048 characters; its format is checked where it is parsed)."""
        return self.required_string(name, min_len=20, max_len=2048)

    def optional_arn(self, name: str) -> str | None:
        return self.string(name, min_len=20, max_len=2048)

    def enum(self, name: str, choices: Sequence[str], *, required: bool = False) -> str | None:
        value: str | None = self._get(name, str, required, "a string")
        if value is not None and value not in choices:
            raise invalid(
                self._path(name), value, f"Member must satisfy enum value set: [{', '.join(choices)}]"
            )
        return value

    def integer(
        self, name: str, *, lo: int | None = None, hi: int | None = None, required: bool = False
    ) -> int | None:
        value: int | None = self._get(name, int, required, "an integer")
        if value is not None:
            check_range(self._path(name), value, lo, hi)
        return value

    def required_integer(self, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
        value = self.integer(name, lo=lo, hi=hi, required=True)
        assert value is not None
        return value

    def number(self, name: str, *, lo: float | None = None, hi: float | None = None) -> float | None:
        """A JSON number (an integer or a float), or one of the strings the SDKs send for the floats JSON
        cannot write: "NaN", "Infinity", "-Infinity"."""
        raw = self.data.get(name)
        if isinstance(raw, str) and raw in NON_FINITE:
            raise invalid(self._path(name), raw, "Member must be a finite number")
        value: int | float | None = self._get(name, (int, float), False, "a number")
        if value is None:
            return None
        if not math.isfinite(value):  # json.loads reads NaN and Infinity
            raise invalid(self._path(name), str(value), "Member must be a finite number")
        check_range(self._path(name), value, lo, hi)
        return float(value)

    def boolean(self, name: str) -> bool | None:
        value: bool | None = self._get(name, bool, False, "a boolean")
        return value

    def struct(self, name: str, *, required: bool = False) -> Params | None:
        value = self._get(name, dict, required, "an object")
        return None if value is None else Params(value, self._path(name))

    def required_struct(self, name: str) -> Params:
        value = self.struct(name, required=True)
        assert value is not None
        return value

    def array(self, name: str, *, min_items: int = 0, max_items: int | None = None) -> list[Any] | None:
        value: list[Any] | None = self._get(name, list, False, "a list")
        if value is None:
            return None
        if len(value) < min_items:
            raise invalid(
                self._path(name),
                f"{len(value)} items",
                f"Member must have length greater than or equal to {min_items}",
            )
        if max_items is not None and len(value) > max_items:
            raise invalid(
                self._path(name),
                f"{len(value)} items",
                f"Member must have length less than or equal to {max_items}",
            )
        return value

    def strings(
        self,
        name: str,
        *,
        min_items: int = 0,
        max_items: int | None = None,
        min_len: int = 1,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> list[str] | None:
        items = self.array(name, min_items=min_items, max_items=max_items)
        if items is None:
            return None
        for i, item in enumerate(items):
            where = f"{self._path(name)}.{i + 1}"
            if not isinstance(item, str):
                raise SerializationException(f"'{where}' must be a string")
            check_string(where, item, min_len, max_len, pattern)
        return items

    def structs(self, name: str, *, min_items: int = 0, max_items: int | None = None) -> list[Params] | None:
        items = self.array(name, min_items=min_items, max_items=max_items)
        if items is None:
            return None
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise SerializationException(f"'{self._path(name)}.{i + 1}' must be an object")
            out.append(Params(item, f"{self._path(name)}.{i + 1}"))
        return out

    def blob(self, name: str, *, required: bool = False, max_bytes: int | None = None) -> bytes | None:
        """A base64 blob (the SDKs encode bytes so in JSON)."""
        text: str | None = self._get(name, str, required, "a base64 string")
        if text is None:
            return None
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SerializationException(f"'{self._path(name)}' is not valid base64") from None
        if required and not data:
            raise invalid(self._path(name), "0 bytes", "Member must have length greater than or equal to 1")
        if max_bytes is not None and len(data) > max_bytes:
            raise invalid(
                self._path(name),
                f"{len(data)} bytes",
                f"Member must have length less than or equal to {max_bytes}",
            )
        return data

    def tags(self, name: str = "Tags", *, required: bool = False) -> dict[str, str]:
        """A tag map: at most 200 tags, keys 1..128 characters not starting with ``aws:``, values ≤256."""
        value = self._get(name, dict, required, "an object")
        if value is None:
            return {}
        if len(value) > MAX_TAGS:
            raise invalid(
                self._path(name),
                f"{len(value)} tags",
                f"Member must have length less than or equal to {MAX_TAGS}",
            )
        for key, val in value.items():
            if not isinstance(val, str):
                raise SerializationException(f"tag {key!r} must have a string value")
            check_tag_key(f"{self._path(name)}.key", key)
            check_string(f"{self._path(name)}.{key}", val, 0, 256, TAG_TEXT)
        return dict(value)


def check_string(
    path: str, value: str, min_len: int, max_len: int | None, pattern: re.Pattern[str] | None
) -> None:
    if len(value) < min_len:
        raise invalid(path, value, f"Member must have length greater than or equal to {min_len}")
    if max_len is not None and len(value) > max_len:
        raise invalid(path, value[:64], f"Member must have length less than or equal to {max_len}")
    if pattern is not None and not pattern.match(value):
        raise invalid(path, value, f"Member must satisfy regular expression pattern: {pattern.pattern}")


def check_range(path: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise invalid(path, value, f"Member must have value greater than or equal to {_number(lo)}")
    if hi is not None and value > hi:
        raise invalid(path, value, f"Member must have value less than or equal to {_number(hi)}")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_tag_key(path: str, key: str) -> None:
    check_string(path, key, 1, 128, TAG_TEXT)
    if key.lower().startswith("aws:"):
        raise invalid(path, key, "Member must not start with 'aws:'")


def s3_object(p: Params) -> ObjectRef:
    """An S3Object {Bucket, Name, Version}: the bucket and key of one of our buckets (Version is ignored)."""
    bucket = p.required_string("Bucket", min_len=3, max_len=255, pattern=BUCKET)
    name = p.required_string("Name", min_len=1, max_len=1024)
    p.string("Version", min_len=1, max_len=1024)
    return ObjectRef(bucket, name)
