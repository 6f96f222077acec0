"""Bearer keys on the native API (in-process), with access keys configured; the open paths; the AWS
endpoint left to SigV4."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from visionloop.api.app import create_app
from visionloop.core.services import Services
from visionloop.settings import AccessKey, Settings

KEYS = (AccessKey("AKIDONE", "first-secret-0123456789"), AccessKey("AKIDTWO", "second-secret-0123456789"))


@pytest.fixture
def client(services: Services, settings: Settings) -> Iterator[TestClient]:
    app = create_app(services, settings.replace(access_keys=KEYS))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_key_wrong_key_right_key(client: TestClient) -> None:
    r = client.get("/api/v1/projects")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="visionloop"'
    assert r.json() == {
        "error": {
            "code": "Unauthorized",
            "message": "This API needs an API key: send the header 'Authorization: Bearer <key>'.",
            "details": {},
        }
    }
    r = client.get("/api/v1/projects", headers=_bearer("first-secret-0123456788"))
    assert r.status_code == 401 and r.json()["error"]["message"] == "The API key is not valid."
    assert r.headers["www-authenticate"] == 'Bearer realm="visionloop", error="invalid_token"'
    assert client.get("/api/v1/projects", headers=_bearer("first-secret-0123456789")).status_code == 200
    r = client.post("/api/v1/projects", json={"name": "fruit"}, headers=_bearer("second-secret-0123456789"))
    assert r.status_code == 201


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "bearer  ",
        "Basic Zmlyc3Qtc2VjcmV0LTAxMjM0NTY3ODk=",
        "AKIDONE",  # an access key id is not a key
        "Bearer AKIDONE",
        "Bearer AKIDONE:first-secret-0123456789",
        "Bearer first-secret-012345678",
        "Bearer first-secret-0123456789x",
        "Bearer fïrst-secret-0123456789",
    ],
)
def test_what_is_not_a_key(client: TestClient, authorization: str) -> None:
    r = client.get("/api/v1/projects", headers={"Authorization": authorization.encode()})
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized"


def test_the_scheme_is_case_insensitive_and_spaces_are_trimmed(client: TestClient) -> None:
    headers = {"Authorization": "  bearer   first-secret-0123456789  "}
    assert client.get("/api/v1/projects", headers=headers).status_code == 200


def test_the_key_is_checked_before_the_body_is_read(client: TestClient) -> None:
    r = client.post("/api/v1/projects", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 401
    r = client.post("/api/v1/projects/p/datasets/train/images", files={"file": ("a.jpg", b"x" * 100_000)})
    assert r.status_code == 401


def test_healthz_docs_and_openapi_stay_open(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert doc["paths"]["/api/v1/projects"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]


def test_every_route_but_the_open_ones_needs_a_key(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        if path == "/healthz":
            continue
        for method in operations:
            url = path.replace("{", "").replace("}", "")
            assert client.request(method, url).status_code == 401, (method, path)
            checked += 1
    assert checked >= 10
    assert client.get("/no/such/page").status_code == 401  # unknown paths tell nothing either


def test_the_aws_endpoint_wants_a_signature_not_a_bearer_key(client: TestClient) -> None:
    headers = {"X-Amz-Target": "RekognitionService.DescribeProjects", **_bearer("first-secret-0123456789")}
    r = client.post("/", content=b"{}", headers=headers)
    assert r.status_code == 400 and r.json()["__type"] == "IncompleteSignatureException"
    r = client.post("/", content=b"{}", headers={"X-Amz-Target": "RekognitionService.DescribeProjects"})
    assert r.status_code == 403 and r.json()["__type"] == "MissingAuthenticationTokenException"
    assert r.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_without_access_keys_nothing_is_checked(services: Services, settings: Settings) -> None:
    with TestClient(create_app(services, settings)) as c:
        assert c.get("/api/v1/projects").status_code == 200
        assert "securitySchemes" not in c.get("/openapi.json").json().get("components", {})
        r = c.post("/", content=b"{}", headers={"X-Amz-Target": "RekognitionService.DescribeProjects"})
        assert r.status_code == 200
