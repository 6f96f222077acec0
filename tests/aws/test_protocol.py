"""The AWS JSON 1.1 wire protocol: routing by X-Amz-Target, error bodies botocore understands, request
ids, bad bodies, unexpected failures and the authentication hook."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.aws.conftest import Server
from visionloop.api.app import create_app
from visionloop.aws.exceptions import AccessDeniedException
from visionloop.core.services import Services
from visionloop.settings import Settings

JSON_1_1 = "application/x-amz-json-1.1"


def _post(url: str, target: str | None, body: bytes = b"{}") -> httpx.Response:
    headers = {"Content-Type": JSON_1_1}
    if target is not None:
        headers["X-Amz-Target"] = target
    return httpx.post(url, content=body, headers=headers)


def test_success_carries_content_type_and_request_id(rek: Any, server: Server) -> None:
    r = _post(server.url, "RekognitionService.DescribeProjects")
    assert r.status_code == 200 and r.headers["content-type"] == JSON_1_1
    assert len(r.headers["x-amzn-requestid"]) == 36 and "ProjectDescriptions" in r.json()
    meta = rek.describe_projects()["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200 and len(meta["RequestId"]) == 36


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("RekognitionService.RecognizeCelebrities", b"{}", "AccessDeniedException"),
        ("RekognitionService.NoSuchThing", b"{}", "UnknownOperationException"),
        ("DynamoDB_20120810.ListTables", b"{}", "UnknownOperationException"),
        (None, b"{}", "UnknownOperationException"),
        ("RekognitionService.CreateProject", b"{not json", "SerializationException"),
        ("RekognitionService.CreateProject", b"[1, 2]", "SerializationException"),
        ("RekognitionService.CreateProject", b'{"ProjectName": 5}', "SerializationException"),
        ("RekognitionService.CreateProject", b"\xff\xfe", "SerializationException"),
        ("RekognitionService.CreateProject", b"{}", "InvalidParameterException"),
        ("RekognitionService.DescribeProjects", b'{"MaxResults": true}', "SerializationException"),
    ],
)
def test_error_bodies(server: Server, target: str | None, body: bytes, code: str) -> None:
    r = _post(server.url, target, body)
    assert r.status_code == 400 and r.headers["content-type"] == JSON_1_1
    doc = r.json()
    assert (
        doc["__type"] == doc["Code"] == code
        and doc["Message"]
        and doc["Logref"] == r.headers["x-amzn-requestid"]
    )
    assert "Traceback" not in r.text


def test_an_unsupported_operation_is_a_400_botocore_does_not_retry(rek: Any) -> None:
    with pytest.raises(rek.exceptions.AccessDeniedException) as e:  # modelled: catchable by class
        rek.recognize_celebrities(Image={"Bytes": b"\xff\xd8\xff"})
    err = e.value.response
    assert err["Error"]["Code"] == "AccessDeniedException"
    assert err["Error"]["Message"] == "RecognizeCelebrities is not supported by this server."
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400 and err["ResponseMetadata"]["RetryAttempts"] == 0


@pytest.fixture
def client(services: Services, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(services, settings), raise_server_exceptions=False) as c:
        yield c


class _Broken:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("database on fire at /secret/path")


def test_unexpected_failures_are_500_without_internals(client: TestClient) -> None:
    client.app.state.rekognition = _Broken()  # type: ignore[attr-defined]
    r = client.post("/", content=b"{}", headers={"X-Amz-Target": "RekognitionService.DescribeProjects"})
    assert r.status_code == 500 and r.json()["__type"] == "InternalServerError"
    assert "secret" not in r.text and "Traceback" not in r.text


class _DenyAll:
    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        assert method == "POST" and path == "/" and headers["x-amz-target"].startswith("RekognitionService.")
        raise AccessDeniedException("no keys allowed")


def test_the_auth_hook_sees_every_request_first(client: TestClient) -> None:
    headers = {"X-Amz-Target": "RekognitionService.CreateProject"}
    assert client.post("/", json={"ProjectName": "open"}, headers=headers).status_code == 200
    client.app.state.aws_authenticator = _DenyAll()  # type: ignore[attr-defined]
    r = client.post("/", json={"ProjectName": "closed"}, headers=headers)
    assert r.status_code == 400 and r.json()["__type"] == "AccessDeniedException"
    assert r.json()["Message"] == "no keys allowed"


def test_the_endpoint_is_not_in_the_openapi_document(client: TestClient) -> None:
    assert "/" not in client.get("/openapi.json").json()["paths"]
