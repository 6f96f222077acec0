"""Authentication end to end: a real server on a free port with access keys configured, called by boto3
(which signs with SigV4 as it does for AWS) and by plain HTTP for the native API and unsigned calls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.servers import serve_in_thread
from visionloop.api.app import create_app
from visionloop.bootstrap import build_services
from visionloop.settings import load_settings

KEY_ID, SECRET = "AKIDVISIONLOOP", "s3cr3t-for-the-auth-tests/+x"
OTHER_ID, OTHER_SECRET = "AKIDOTHER", "another-secret-0123456789"
TARGET = "RekognitionService.DescribeProjects"
JSON_1_1 = "application/x-amz-json-1.1"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("auth") / "var"
    keys = f"{KEY_ID}:{SECRET},{OTHER_ID}:{OTHER_SECRET}"
    settings = load_settings({"data_dir": str(data), "workers": 0}, environ={"VISIONLOOP_ACCESS_KEYS": keys})
    svc = build_services(settings)
    try:
        with serve_in_thread(create_app(svc, settings)) as url:
            yield url
    finally:
        svc.repo.close()


def client(url: str, key_id: str = KEY_ID, secret: str = SECRET, **config: Any) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, **config),
    )


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as e:
        call()
    response: dict[str, Any] = e.value.response
    return response


def test_the_configured_keys_work(url: str) -> None:
    rek = client(url)
    arn = rek.create_project(ProjectName="signed")["ProjectArn"]
    names = [
        p["ProjectArn"]
        for p in client(url, OTHER_ID, OTHER_SECRET).describe_projects()["ProjectDescriptions"]
    ]
    assert arn in names


def test_a_wrong_secret_is_an_invalid_signature(url: str) -> None:
    err = _error(lambda: client(url, secret=SECRET + "x").describe_projects())
    assert err["Error"]["Code"] == "InvalidSignatureException"
    assert err["Error"]["Message"].startswith("The request signature we calculated does not match")
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_unknown_key_is_an_unrecognized_client(url: str) -> None:
    err = _error(lambda: client(url, key_id="AKIDNOBODY").describe_projects())
    assert err["Error"]["Code"] == "UnrecognizedClientException"
    assert err["Error"]["Message"] == "The security token included in the request is invalid."


def test_a_session_token_this_server_never_issued_is_refused(url: str) -> None:
    rek = boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token="token-from-elsewhere",
    )
    assert _error(rek.describe_projects)["Error"]["Code"] == "UnrecognizedClientException"


@pytest.mark.parametrize("minutes", [-20, 20])
def test_a_skewed_client_clock_is_refused(url: str, minutes: int) -> None:
    rek = client(url)
    skewed = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=minutes)
    with mock.patch("botocore.auth.get_current_datetime", return_value=skewed):  # the client's clock only
        err = _error(rek.describe_projects)
    assert err["Error"]["Code"] == "InvalidSignatureException"
    expected = "Signature expired: " if minutes < 0 else "Signature not yet current: "
    assert err["Error"]["Message"].startswith(expected) and "5 min." in err["Error"]["Message"]


def test_an_unsigned_request_is_refused(url: str) -> None:
    r = httpx.post(url, content=b"{}", headers={"X-Amz-Target": TARGET, "Content-Type": JSON_1_1})
    assert r.status_code == 403 and r.headers["content-type"] == JSON_1_1
    assert r.json()["__type"] == "MissingAuthenticationTokenException"
    assert r.json()["message"] == "Missing Authentication Token"
    unsigned = client(url, signature_version=botocore.UNSIGNED)
    err = _error(unsigned.describe_projects)
    assert err["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_garbled_authorization_header_is_an_incomplete_signature(url: str) -> None:
    headers = {"X-Amz-Target": TARGET, "Authorization": "AWS4-HMAC-SHA256 Credential=x"}
    r = httpx.post(url, content=b"{}", headers=headers)
    assert r.status_code == 400 and r.json()["__type"] == "IncompleteSignatureException"


def test_a_body_changed_after_signing_is_refused(url: str) -> None:
    request = AWSRequest(
        method="POST",
        url=url + "/",
        data=b'{"ProjectNames": ["a"]}',
        headers={"X-Amz-Target": TARGET, "Content-Type": JSON_1_1},
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "rekognition", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    assert httpx.post(url, content=request.body, headers=headers).status_code == 200
    r = httpx.post(url, content=b'{"ProjectNames": ["b"]}', headers=headers)
    assert r.status_code == 400 and r.json()["__type"] == "InvalidSignatureException"


def test_the_native_api_needs_a_bearer_key(url: str) -> None:
    assert httpx.get(f"{url}/healthz").status_code == 200
    r = httpx.get(f"{url}/api/v1/projects")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "Unauthorized"
    r = httpx.get(f"{url}/api/v1/projects", headers={"Authorization": "Bearer not-the-secret"})
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]
    r = httpx.get(f"{url}/api/v1/projects", headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status_code == 200
