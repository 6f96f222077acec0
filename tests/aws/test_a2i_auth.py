"""The A2I runtime API on a server with access keys: boto3 signs with SigV4 for the service "sagemaker"
and gets through (the bearer keys of the native API are not asked for); unsigned, wrongly signed or
Rekognition-scoped requests are refused with the AWS authentication errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.servers import serve_in_thread
from visionloop.api.app import create_app
from visionloop.bootstrap import build_services
from visionloop.settings import load_settings

KEY_ID, SECRET = "AKIDA2ITEST", "a2i-secret-for-the-tests/+x"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("a2i-auth") / "var"
    settings = load_settings(
        {"data_dir": str(data), "workers": 0}, environ={"VISIONLOOP_ACCESS_KEYS": f"{KEY_ID}:{SECRET}"}
    )
    svc = build_services(settings)
    try:
        with serve_in_thread(create_app(svc, settings)) as url:
            yield url
    finally:
        svc.repo.close()


def _a2i(url: str, secret: str = SECRET, **config: Any) -> Any:
    return boto3.client(
        "sagemaker-a2i-runtime",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, **config),
    )


def _code(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_signed_requests_get_through(url: str) -> None:
    a2i = _a2i(url)
    assert _code(lambda: a2i.describe_human_loop(HumanLoopName="nope")) == ("ResourceNotFoundException", 404)
    flow = "arn:aws:sagemaker:eu-west-1:123456789012:flow-definition/nothing"
    assert _code(lambda: a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=5)) == (
        "ResourceNotFoundException",
        404,
    )


def test_bad_signatures_are_refused(url: str) -> None:
    wrong = _a2i(url, secret="not-the-secret")
    assert _code(lambda: wrong.describe_human_loop(HumanLoopName="nope"))[0] == "InvalidSignatureException"
    unsigned = _a2i(url, signature_version=botocore.UNSIGNED)
    assert _code(lambda: unsigned.describe_human_loop(HumanLoopName="nope")) == (
        "MissingAuthenticationTokenException",
        403,
    )
    r = httpx.get(f"{url}/human-loops/nope", headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status_code == 400 and r.headers["x-amzn-errortype"] == "IncompleteSignatureException"


def test_a_rekognition_signature_is_not_an_a2i_one(url: str) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=f"{url}/human-loops/nope", headers={})
    SigV4Auth(Credentials(KEY_ID, SECRET), "rekognition", "eu-west-1").add_auth(request)
    r = httpx.get(f"{url}/human-loops/nope", headers=dict(request.headers.items()))
    assert r.status_code == 400 and r.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert "sagemaker" in r.json()["message"]


def test_the_native_review_api_still_needs_a_bearer_key(url: str) -> None:
    assert httpx.get(f"{url}/api/v1/projects/x/flow").status_code == 401
    r = httpx.get(f"{url}/api/v1/projects/x/flow", headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status_code == 404
