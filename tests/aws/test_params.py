"""Parameter checks and the Image member, in-process."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from visionloop.aws.exceptions import (
    ImageTooLargeException,
    InvalidParameterException,
    InvalidS3ObjectException,
    SerializationException,
)
from visionloop.aws.images import CUSTOM_LABELS_MAX_BYTES, image_member, read_image
from visionloop.aws.params import NAME, Params, s3_object
from visionloop.core.keys import ObjectRef
from visionloop.core.services import Services


def test_messages_follow_aws_validation_wording() -> None:
    p = Params({"MaxResults": 150, "Out": {"S3Bucket": "x"}})
    with pytest.raises(InvalidParameterException) as e:
        p.integer("MaxResults", lo=1, hi=100)
    assert e.value.message == (
        "1 validation error detected: Value '150' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 100"
    )
    out = p.required_struct("Out")
    with pytest.raises(InvalidParameterException, match="at 'out.s3Bucket'.*greater than or equal to 3"):
        out.string("S3Bucket", min_len=3)


@pytest.mark.parametrize(
    ("data", "call"),
    [
        ({"Name": 5}, lambda p: p.string("Name")),
        ({"Name": ["a"]}, lambda p: p.string("Name")),
        ({"N": "5"}, lambda p: p.integer("N")),
        ({"N": True}, lambda p: p.integer("N")),
        ({"F": "50"}, lambda p: p.number("F")),
        ({"F": False}, lambda p: p.number("F")),
        ({"B": 1}, lambda p: p.boolean("B")),
        ({"L": {"a": 1}}, lambda p: p.array("L")),
        ({"L": [1]}, lambda p: p.strings("L")),
        ({"S": "x"}, lambda p: p.struct("S")),
        ({"Blob": "not base64!"}, lambda p: p.blob("Blob")),
        ({"Tags": {"k": 1}}, lambda p: p.tags()),
    ],
)
def test_wrong_json_types_are_serialization_errors(data: dict[str, Any], call: Any) -> None:
    with pytest.raises(SerializationException):
        call(Params(data))


def test_required_patterns_enums_and_lists() -> None:
    p = Params({"Name": "bad name", "Kind": "X", "Names": ["ok", "no way"], "Empty": ""})
    with pytest.raises(InvalidParameterException, match="regular expression"):
        p.string("Name", pattern=NAME)
    with pytest.raises(InvalidParameterException, match=re.escape("enum value set: [A, B]")):
        p.enum("Kind", ("A", "B"))
    with pytest.raises(InvalidParameterException, match="at 'names.2'"):
        p.strings("Names", pattern=NAME)
    with pytest.raises(InvalidParameterException, match="length less than or equal to 1"):
        p.strings("Names", max_items=1)
    with pytest.raises(InvalidParameterException, match="must not be null"):
        p.required_string("Missing")
    with pytest.raises(InvalidParameterException):
        p.required_string("Empty")
    assert p.string("Missing") is None and p.tags() == {}


def test_numbers_and_required_integers() -> None:
    p = Params({"F": 99.5, "I": 100, "Nan": "NaN", "Inf": "-Infinity", "Big": 1e309, "Units": 0})
    assert p.number("F", lo=0, hi=100) == 99.5 and p.number("I", lo=0, hi=100) == 100.0
    assert p.number("Missing") is None
    with pytest.raises(InvalidParameterException, match="less than or equal to 99.25"):
        p.number("F", hi=99.25)
    for name in ("Nan", "Inf", "Big"):  # the SDKs send NaN and infinities as strings; 1e309 is infinite
        with pytest.raises(InvalidParameterException, match="finite"):
            p.number(name, lo=0, hi=100)
    with pytest.raises(InvalidParameterException, match="at 'units'.*greater than or equal to 1"):
        p.required_integer("Units", lo=1)
    with pytest.raises(InvalidParameterException, match="must not be null"):
        p.required_integer("Missing", lo=1)


def test_tags() -> None:
    assert Params({"Tags": {"team": "cv", "a b": "ünïcode: ok/=+-@"}}).tags() == {
        "team": "cv",
        "a b": "ünïcode: ok/=+-@",
    }
    for bad in ({"aws:x": "v"}, {"": "v"}, {"k" * 129: "v"}, {"k": "v" * 257}, {"k": "semi;colon"}):
        with pytest.raises(InvalidParameterException):
            Params({"Tags": bad}).tags()


def _image(**members: Any) -> Params:
    return Params({"Image": members})


def test_image_needs_exactly_one_source(services: Services) -> None:
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0hello").decode()
    assert read_image(_image(Bytes=jpeg), services.buckets) == b"\xff\xd8\xff\xe0hello"
    with pytest.raises(InvalidParameterException, match="exactly one"):
        read_image(_image(), services.buckets)
    with pytest.raises(InvalidParameterException, match="exactly one"):
        read_image(_image(Bytes=jpeg, S3Object={"Bucket": "bkt", "Name": "k"}), services.buckets)
    with pytest.raises(InvalidParameterException):
        read_image(Params({}), services.buckets)


def test_image_limits_and_objects(services: Services) -> None:
    big = base64.b64encode(b"\0" * (4 * 1024 * 1024 + 1)).decode()
    read_image(_image(Bytes=big), services.buckets)  # under the general 5 MiB
    with pytest.raises(ImageTooLargeException):
        read_image(_image(Bytes=big), services.buckets, max_bytes=4 * 1024 * 1024)
    services.buckets.put("pics", "a.jpg", b"12345")
    assert read_image(_image(S3Object={"Bucket": "pics", "Name": "a.jpg"}), services.buckets) == b"12345"
    with pytest.raises(ImageTooLargeException):
        read_image(_image(S3Object={"Bucket": "pics", "Name": "a.jpg"}), services.buckets, max_object_bytes=4)
    for name in ("missing.jpg", "../a.jpg"):
        with pytest.raises(InvalidS3ObjectException):
            read_image(_image(S3Object={"Bucket": "pics", "Name": name}), services.buckets)
    with pytest.raises(InvalidParameterException):
        s3_object(Params({"Bucket": "b", "Name": "k"}))


def test_image_member_leaves_objects_unread() -> None:
    ref = image_member(_image(S3Object={"Bucket": "pics", "Name": "a/b.jpg", "Version": "3"}))
    assert ref == ObjectRef("pics", "a/b.jpg")  # read by the use case, with its own limits
    with pytest.raises(InvalidS3ObjectException):
        image_member(_image(S3Object={"Bucket": "pics", "Name": "/abs.jpg"}))
    big = base64.b64encode(b"\0" * (CUSTOM_LABELS_MAX_BYTES + 1)).decode()
    with pytest.raises(ImageTooLargeException):
        image_member(_image(Bytes=big), max_bytes=CUSTOM_LABELS_MAX_BYTES)
    assert CUSTOM_LABELS_MAX_BYTES == 4 * 1024 * 1024
