"""Tokens, ARNs and the error map, in-process."""

from __future__ import annotations

import pytest

from visionloop import errors
from visionloop.aws import arns
from visionloop.aws.exceptions import (
    ImageTooLargeException,
    InternalServerError,
    InvalidImageFormatException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    ResourceInUseException,
    ResourceNotFoundException,
    ResourceNotReadyException,
    from_domain,
)
from visionloop.aws.pagination import decode, encode, page
from visionloop.aws.params import Params


def test_pages_and_tokens() -> None:
    items = list(range(7))
    first = page(Params({"MaxResults": 3}), "Op", {"f": 1})
    chunk, token = first.slice(items)
    assert chunk == [0, 1, 2] and token is not None
    assert page(Params({"MaxResults": 3}), "Op", {"f": 1}).slice(items)[1] == token  # stable
    second = page(Params({"MaxResults": 3, "NextToken": token}), "Op", {"f": 1})
    assert second.slice(items)[0] == [3, 4, 5]
    last = page(Params({"NextToken": second.slice(items)[1]}), "Op", {"f": 1})
    assert last.slice(items) == ([6], None)
    with pytest.raises(InvalidPaginationTokenException):
        page(Params({"NextToken": token}), "Op", {"f": 2})
    with pytest.raises(InvalidPaginationTokenException):
        page(Params({"NextToken": token}), "OtherOp", {"f": 1})
    assert page(Params({}), "Op", {}).limit == 100


@pytest.mark.parametrize("token", ["", "x", "!!!!", encode(-1, "s"), "eyJvIjogdHJ1ZSwgInMiOiAicyJ9"])
def test_bad_tokens(token: str) -> None:
    with pytest.raises(InvalidPaginationTokenException):
        decode(token, "s")


def test_arns() -> None:
    v = arns.parse(
        "arn:aws:rekognition:eu-west-1:111122223333:project/p.1/version/v-2/1574317227432", "version"
    )
    assert (v.region, v.account, v.project, v.name, v.ms) == (
        "eu-west-1",
        "111122223333",
        "p.1",
        "v-2",
        1574317227432,
    )
    d = arns.parse_any("arn:aws:rekognition:us-east-1:123456789012:project/p/dataset/test/17")
    assert (d.kind, d.name, d.ms) == ("dataset", "test", 17)
    assert arns.parse_any("arn:aws-cn:rekognition:cn-north-1:123456789012:project/p/5").kind == "project"
    for bad, kind in [
        ("arn:aws:rekognition:us-east-1:123456789012:project/p/dataset/valid/1", "dataset"),
        ("arn:aws:rekognition:us-east-1:12345:project/p/1", "project"),
        ("arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1", "project"),
        ("not an arn at all", "project"),
    ]:
        with pytest.raises(InvalidParameterException):
            arns.parse(bad, kind)
    with pytest.raises(ResourceNotFoundException):
        arns.parse_any("arn:aws:rekognition:us-east-1:123456789012:collection/c")
    with pytest.raises(InvalidParameterException):
        arns.parse_any("project/p/1")


@pytest.mark.parametrize(
    ("domain", "aws"),
    [
        (errors.ImageTooLarge("x"), ImageTooLargeException),
        (errors.InvalidImage("x"), InvalidImageFormatException),
        (errors.InvalidManifest("x"), InvalidParameterException),
        (errors.InvalidKey("x"), InvalidParameterException),
        (errors.InvalidInput("x"), InvalidParameterException),
        (errors.ObjectNotFound("x"), ResourceNotFoundException),
        (errors.NotReady("x"), ResourceNotReadyException),
        (errors.Conflict("x"), ResourceInUseException),
        (errors.StorageError("x"), InternalServerError),
        (errors.Unavailable("x"), InternalServerError),
        (errors.VisionloopError("x"), InternalServerError),
    ],
)
def test_domain_errors_map_once(domain: errors.VisionloopError, aws: type) -> None:
    mapped = from_domain(domain)
    assert type(mapped) is aws and mapped.message == "x"
    assert mapped.status == (500 if aws is InternalServerError else 400)
    assert mapped.body("rid") == {
        "__type": aws.__name__,
        "Code": aws.__name__,
        "Logref": "rid",
        "Message": "x",
        "message": "x",
    }
