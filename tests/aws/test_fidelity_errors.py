"""What boto3 code written for AWS catches when it calls an operation this server does not serve: a
modelled error class, on the Rekognition endpoint and on the A2I runtime endpoint (issue 19)."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
import httpx
import pytest
from botocore.config import Config

from tests.aws.conftest import REGION, Server
from visionloop.aws.api_operations import REKOGNITION_OPERATIONS
from visionloop.aws.responses import OPERATIONS


def test_the_operation_list_is_botocores_rekognition_model() -> None:
    model = botocore.session.get_session().get_service_model("rekognition")
    assert frozenset(model.operation_names) == REKOGNITION_OPERATIONS
    assert set(OPERATIONS) <= REKOGNITION_OPERATIONS  # every served operation is one of Rekognition's


def test_an_unserved_rekognition_operation_is_a_modelled_error(rek: Any) -> None:
    with pytest.raises(rek.exceptions.AccessDeniedException) as e:
        rek.start_label_detection(Video={"S3Object": {"Bucket": "videos", "Name": "a.mp4"}})
    err = e.value.response
    assert err["Error"]["Message"] == "StartLabelDetection is not supported by this server."
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400 and err["ResponseMetadata"]["RetryAttempts"] == 0
    with pytest.raises(rek.exceptions.AccessDeniedException):
        rek.get_celebrity_info(Id="1")


def test_a_name_rekognition_does_not_have_is_an_unknown_operation(server: Server) -> None:
    headers = {"X-Amz-Target": "RekognitionService.MakeCoffee", "Content-Type": "application/x-amz-json-1.1"}
    r = httpx.post(server.url, content=b"{}", headers=headers)
    assert r.status_code == 400 and r.json()["__type"] == "UnknownOperationException"


def _a2i(server: Server) -> Any:
    return boto3.client(
        "sagemaker-a2i-runtime",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def test_an_unserved_a2i_request_is_a_modelled_error(server: Server) -> None:
    """The A2I runtime serves all five of its operations; any other request under /human-loops (here a
    DescribeHumanLoop sent to a deeper path) answers the model's ValidationException."""
    a2i = _a2i(server)

    def elsewhere(request: Any, **_: Any) -> None:
        request.url = request.url.replace("/human-loops/some-loop", "/human-loops/some-loop/tasks")

    a2i.meta.events.register("before-sign.sagemaker-a2i-runtime.DescribeHumanLoop", elsewhere)
    with pytest.raises(a2i.exceptions.ValidationException) as e:
        a2i.describe_human_loop(HumanLoopName="some-loop")
    err = e.value.response
    assert "is not an A2I runtime operation" in err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
