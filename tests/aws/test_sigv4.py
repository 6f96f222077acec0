"""The SigV4 verifier on its own: AWS's published examples, requests signed by botocore's own signer
(query strings, odd paths, extra headers), and every way a request is refused, each with its AWS code."""

from __future__ import annotations

import contextlib
import hashlib
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from visionloop.aws.exceptions import (
    AwsError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from visionloop.aws.sigv4 import SigV4Verifier, canonical_query, canonical_uri

KEY_ID, SECRET = "AKIDTEST", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYtestKEY"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TARGET = {"X-Amz-Target": "RekognitionService.DescribeProjects"}
Wire = tuple[str, str, dict[str, str], bytes]  # method, target, headers, body as an ASGI server sees them


def verifier(**kw: Any) -> SigV4Verifier:
    return SigV4Verifier({KEY_ID: SECRET, "OTHER": "x" * 20}, now=lambda: NOW, **kw)


def signed(
    url: str = "http://localhost:8080/",
    *,
    method: str = "POST",
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    key: tuple[str, str] = (KEY_ID, SECRET),
    service: str = "rekognition",
    region: str = "us-east-1",
    at: datetime = NOW,
    token: str | None = None,
) -> Wire:
    """A request signed by botocore's SigV4Auth at ``at``, as the server receives it: target and header
    values are the wire bytes decoded as Latin-1."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {}, params=params or {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(Credentials(key[0], key[1], token), service, region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    wire_headers = {"host": parts.netloc, **dict(prepared.headers.items())}
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return (
        method,
        target.encode().decode("latin-1"),
        {k.lower(): _latin1(v) for k, v in wire_headers.items()},
        prepared.body or b"",
    )


def _latin1(value: str | bytes) -> str:
    return (value if isinstance(value, bytes) else value.encode()).decode("latin-1")


def check(wire: Wire, v: SigV4Verifier | None = None) -> None:
    (v or verifier()).authenticate(*wire)


# --- AWS's published examples ----------------------------------------------------------------------------

EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EXAMPLE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)


@pytest.mark.parametrize(
    ("service", "target", "headers", "signed_headers", "signature"),
    [
        (  # the get-vanilla case of AWS's SigV4 test suite
            "service",
            "/",
            {"host": "example.amazonaws.com"},
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (  # the IAM ListUsers example of AWS's "Signature Version 4 signing process" guide
            "iam",
            "/?Action=ListUsers&Version=2010-05-08",
            {"host": "iam.amazonaws.com", "content-type": "application/x-www-form-urlencoded; charset=utf-8"},
            "content-type;host;x-amz-date",
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        ),
    ],
)
def test_aws_published_examples(
    service: str, target: str, headers: dict[str, str], signed_headers: str, signature: str
) -> None:
    v = SigV4Verifier({"AKIDEXAMPLE": EXAMPLE_SECRET}, services=[service], now=lambda: EXAMPLE_TIME)
    authorization = (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/{service}/aws4_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    wire = {**headers, "x-amz-date": "20150830T123600Z", "authorization": authorization}
    v.authenticate("GET", target, wire, b"")
    with pytest.raises(InvalidSignatureException):
        v.authenticate("GET", target, {**wire, "authorization": authorization[:-1] + "0"}, b"")


# --- what botocore signs, the verifier accepts ---------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        signed(),
        signed(region="eu-central-1"),
        signed(body=b""),
        signed(body='{"ProjectName": "früchte"}'.encode()),
        signed(method="GET", body=b"", url="http://localhost/"),
        signed(params={"b": "x y", "a": "ü/+=&", "empty": "", "A": "1"}),
        signed(url="http://localhost:8080/?z=1&a=2&a=1&b"),
        signed(url="http://localhost:8080/a/b%20c/%E1%88%B4/"),
        signed(url="http://localhost:8080/ünïcode/ሴ"),  # raw UTF-8 on the wire
        signed(url="http://localhost:8080/a/./b/../c//d"),
        signed(url="https://rekognition.example.com/"),
        signed(url="http://[::1]:9000/"),
        signed(headers={"X-Custom": "  a   b  ", "X-Amz-Target": "RekognitionService.DescribeProjects"}),
        signed(headers={"X-Name": "héllo wörld"}),
        signed(headers={"Content-Type": "application/x-amz-json-1.1", "Date": format_datetime(NOW, True)}),
        signed(headers={"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()}),
        signed(at=NOW - timedelta(minutes=4, seconds=59)),
        signed(at=NOW + timedelta(minutes=4, seconds=59)),
        signed(key=("OTHER", "x" * 20)),
    ],
)
def test_requests_signed_by_botocore_are_accepted(wire: Wire) -> None:
    check(wire)


def test_repeated_headers_are_joined_with_commas() -> None:
    class Repeated(dict[str, str]):
        def items(self) -> Any:
            return [*super().items(), ("x-multi", " b ")]

    method, target, headers, body = signed(headers={"X-Multi": "a"})
    with pytest.raises(InvalidSignatureException, match="x-multi:a,b\n"):
        verifier().authenticate(method, target, Repeated(headers), body)


def test_canonical_forms() -> None:
    assert canonical_uri("") == canonical_uri("/") == "/"
    assert canonical_uri("/a/b%20c/./../d//e/") == "/a/d/e/"
    assert canonical_uri("/a%20b/c~d") == "/a%2520b/c~d"  # encoded twice, as for every service but S3
    assert canonical_query("b=2&a=x+y&a=%2B&c") == "a=%2B&a=x%20y&b=2&c="
    assert canonical_query("") == ""


# --- every way a request is refused ------------------------------------------------------------------


def _replace_auth(wire: Wire, old: str, new: str) -> Wire:
    method, target, headers, body = wire
    return method, target, {**headers, "authorization": headers["authorization"].replace(old, new)}, body


def _without(wire: Wire, header: str) -> Wire:
    method, target, headers, body = wire
    return method, target, {k: v for k, v in headers.items() if k != header}, body


def _with(wire: Wire, header: str, value: str) -> Wire:
    method, target, headers, body = wire
    return method, target, {**headers, header: value}, body


@pytest.mark.parametrize(
    ("wire", "error", "message"),
    [
        (_without(signed(), "authorization"), MissingAuthenticationTokenException, "Missing Authentication"),
        (_with(signed(), "authorization", "  "), MissingAuthenticationTokenException, "Missing"),
        (_with(signed(), "authorization", "Bearer abc"), IncompleteSignatureException, "Unsupported"),
        (
            _replace_auth(signed(), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
            IncompleteSignatureException,
            "ECDSA",
        ),
        (_replace_auth(signed(), ", Signature=", ", Signature"), IncompleteSignatureException, "name=value"),
        (
            _replace_auth(signed(), "SignedHeaders=", "Headers="),
            IncompleteSignatureException,
            "SignedHeaders",
        ),
        (
            _replace_auth(signed(), "Credential=AKIDTEST/", "Credential="),
            IncompleteSignatureException,
            "form",
        ),
        (
            _replace_auth(signed(), "/aws4_request", "/aws5_request"),
            IncompleteSignatureException,
            "terminator",
        ),
        (_replace_auth(signed(), "host;", ""), IncompleteSignatureException, "must include 'host'"),
        (_replace_auth(signed(), "SignedHeaders=", "SignedHeaders=;"), IncompleteSignatureException, "empty"),
        (_replace_auth(signed(), "host;", "host;x-gone;"), IncompleteSignatureException, "'x-gone' is not"),
        (_without(signed(), "x-amz-date"), IncompleteSignatureException, "X-Amz-Date' or a 'Date'"),
        (_with(signed(), "x-amz-date", "2026-01-02T03:04:05Z"), IncompleteSignatureException, "ISO-8601"),
        (_with(signed(), "x-amz-date", "2026010T030405Z"), IncompleteSignatureException, "ISO-8601"),
        (
            _with(_without(signed(), "x-amz-date"), "date", "yesterday"),
            IncompleteSignatureException,
            "RFC 1123",
        ),
        (signed(key=("NOBODY", SECRET)), UnrecognizedClientException, "security token"),
        (signed(token="session-token"), UnrecognizedClientException, "security token"),
        (signed(key=(KEY_ID, SECRET + "x")), InvalidSignatureException, "does not match"),
        (signed(service="sagemaker"), InvalidSignatureException, "scoped to correct service: 'rekognition'"),
        (
            _replace_auth(signed(), "/20260102/", "/20260101/"),
            InvalidSignatureException,
            "Date in Credential",
        ),
        (
            _with(signed(headers=TARGET), "x-amz-target", "RekognitionService.DeleteProject"),
            InvalidSignatureException,
            "does not match",
        ),
        (_with(signed(), "host", "evil.example.com"), InvalidSignatureException, "Canonical String"),
        (
            _with(signed(), "x-amz-content-sha256", hashlib.sha256(b"other").hexdigest()),
            InvalidSignatureException,
            "x-amz-content-sha256",
        ),
        (signed(at=NOW - timedelta(minutes=20)), InvalidSignatureException, "Signature expired"),
        (signed(at=NOW + timedelta(minutes=20)), InvalidSignatureException, "Signature not yet current"),
    ],
)
def test_refusals(wire: Wire, error: type[AwsError], message: str) -> None:
    with pytest.raises(error, match=message):
        check(wire)


def test_an_unsigned_header_may_be_added() -> None:
    check(_with(signed(), "x-forwarded-for", "10.0.0.1"))


def test_a_changed_body_query_or_path_is_refused() -> None:
    method, target, headers, _ = signed(params={"a": "1"})
    with pytest.raises(InvalidSignatureException):
        verifier().authenticate(method, target, headers, b'{"ProjectName": "x"}')
    with pytest.raises(InvalidSignatureException):
        verifier().authenticate(method, target.replace("a=1", "a=2"), headers, b"{}")
    with pytest.raises(InvalidSignatureException):
        verifier().authenticate(method, "/other" + target, headers, b"{}")
    with pytest.raises(InvalidSignatureException):
        verifier().authenticate("PUT", target, headers, b"{}")


def test_expired_message_is_aws_s() -> None:
    with pytest.raises(InvalidSignatureException) as e:
        check(signed(at=NOW - timedelta(minutes=20)))
    assert e.value.message == (
        "Signature expired: 20260102T024405Z is now earlier than 20260102T025905Z (20260102T030405Z - 5 min.)"
    )
    assert e.value.status == 400 and e.value.code == "InvalidSignatureException"


def test_statuses_and_codes() -> None:
    assert (MissingAuthenticationTokenException().status, MissingAuthenticationTokenException().code) == (
        403,
        "MissingAuthenticationTokenException",
    )
    assert {IncompleteSignatureException.status, InvalidSignatureException.status} == {400}
    assert UnrecognizedClientException.status == 400


def test_garbage_is_refused_with_an_aws_error_never_a_crash() -> None:
    rng = random.Random(7)
    method, target, headers, body = signed(params={"q": "1"})
    alphabet = "".join(map(chr, range(256))) + "ሴ\udcff"
    for _ in range(2000):
        h = dict(headers)
        name = rng.choice([*h, "date", "x-amz-content-sha256"])
        text = h.get(name, "")
        cut = rng.randrange(len(text) + 1)
        h[name] = (
            text[:cut] + "".join(rng.choice(alphabet) for _ in range(rng.randrange(4))) + text[cut + 1 :]
        )
        t = target if rng.random() < 0.5 else "".join(rng.choice(alphabet) for _ in range(8))
        with contextlib.suppress(AwsError):
            verifier().authenticate(method, t, h, body)
