"""SageMaker flow definitions on a server with access keys: boto3's sagemaker client signs with SigV4 for
the service "sagemaker" and gets through on the Rekognition endpoint's path; a wrong secret, or a
Rekognition-scoped signature on a SageMaker request, is refused with the AWS authentication errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.servers import serve_in_thread
from visionloop.api.app import create_app
from visionloop.bootstrap import build_services
from visionloop.settings import load_settings

KEY_ID, SECRET = "AKIDSAGEMAKER", "sagemaker-secret-for-the-tests/+x"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("sagemaker-auth") / "var"
    settings = load_settings(
        {"data_dir": str(data), "workers": 0}, environ={"VISIONLOOP_ACCESS_KEYS": f"{KEY_ID}:{SECRET}"}
    )
    svc = build_services(settings)
    try:
        with serve_in_thread(create_app(svc, settings)) as url:
            yield url
    finally:
        svc.repo.close()


def _client(url: str, service: str = "sagemaker", secret: str = SECRET) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as e:
        call()
    return str(e.value.response["Error"]["Code"])


def test_signed_requests_get_through_and_others_do_not(url: str) -> None:
    sm = _client(url)
    assert sm.list_flow_definitions()["FlowDefinitionSummaries"] == []
    assert _code(lambda: sm.describe_flow_definition(FlowDefinitionName="nope")) == "ResourceNotFound"
    wrong = _client(url, secret="not-the-secret")
    assert _code(lambda: wrong.list_flow_definitions()) == "InvalidSignatureException"
    # a Rekognition client's signature (scope "rekognition") on a SageMaker target
    rek = _client(url, "rekognition")

    def sagemaker_target(request: Any, **_: Any) -> None:
        request.headers.replace_header("X-Amz-Target", "SageMaker.ListFlowDefinitions")

    rek.meta.events.register_first("before-sign.rekognition.DescribeProjects", sagemaker_target)
    assert _code(lambda: rek.describe_projects()) == "InvalidSignatureException"
