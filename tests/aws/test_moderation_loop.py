"""DetectModerationLabels with HumanLoopConfig through boto3 against the session's real server, with the real
moderation analyser: a flow created with the ``sagemaker`` client, a portrait whose moderation label meets
the flow's condition starts an A2I human loop (seen with the ``sagemaker-a2i-runtime`` client and in the
reviewers' queue), a photo that does not meet it starts none, and each mistake gets its modelled error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, Server
from tests.aws.test_flow_definitions import ROLE, aws_client, create_moderation_flow, human_loop_config
from tests.conftest import shared_dataset
from visionloop.core import review
from visionloop.core.records.review import NONE_OF_THE_ABOVE

NON_EXPLICIT = "Non-Explicit Nudity of Intimate parts and Kissing"
CONDITIONS = {
    "Conditions": [
        {
            "ConditionType": "ModerationLabelConfidenceCheck",
            "ConditionParameters": {"ModerationLabelName": NON_EXPLICIT, "ConfidenceLessThan": 99},
        }
    ]
}


@pytest.fixture(scope="module")
def portrait() -> bytes:
    """A portrait in a low-cut dress: NON_EXPLICIT at about 86% (tests/analysis/test_moderation.py)."""
    return (shared_dataset("faces") / "person_10" / "img44.jpg").read_bytes()


@pytest.fixture(scope="module")
def banana() -> bytes:
    return sorted((shared_dataset("grocery-produce") / "Banana").glob("*.jpg"))[0].read_bytes()


@pytest.fixture(scope="module")
def sm(server: Server) -> Any:
    return aws_client(server)


@pytest.fixture(scope="module")
def a2i(server: Server) -> Any:
    return aws_client(server, "sagemaker-a2i-runtime")


def _flow(sm: Any, server: Server) -> tuple[str, str]:
    name = server.name("moderation-review")
    conditions = {
        "HumanLoopActivationConditionsConfig": {"HumanLoopActivationConditions": json.dumps(CONDITIONS)}
    }
    return name, create_moderation_flow(sm, name, HumanLoopActivationConfig=conditions)


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] < 500 and r["Error"]["Message"], r
    return str(r["Error"]["Code"])


def test_a_label_that_meets_the_condition_starts_a_loop(
    rek: Any, sm: Any, a2i: Any, server: Server, portrait: bytes
) -> None:
    name, arn = _flow(sm, server)
    config = {
        "HumanLoopName": "portrait-review",
        "FlowDefinitionArn": arn,
        "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
    }
    r = rek.detect_moderation_labels(Image={"Bytes": portrait}, HumanLoopConfig=config)
    assert r["ContentTypes"] == []
    assert [m["Name"] for m in r["ModerationLabels"]][:1] == [NON_EXPLICIT]
    out = r["HumanLoopActivationOutput"]
    loop_arn = out["HumanLoopArn"]
    assert loop_arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:human-loop/portrait-review"
    assert out["HumanLoopActivationReasons"] == ["ConditionsEvaluation"]
    results = json.loads(out["HumanLoopActivationConditionsEvaluationResults"])
    assert results["Conditions"][0]["EvaluationResult"] is True
    assert results["Conditions"][0]["ConditionParameters"]["ModerationLabelName"] == NON_EXPLICIT

    loop = a2i.describe_human_loop(HumanLoopName="portrait-review")
    assert (loop["HumanLoopStatus"], loop["FlowDefinitionArn"], loop["HumanLoopArn"]) == (
        "InProgress",
        arn,
        loop_arn,
    )
    listed = a2i.list_human_loops(FlowDefinitionArn=arn)["HumanLoopSummaries"]
    assert [x["HumanLoopName"] for x in listed] == ["portrait-review"]

    item = review.next_item(server.svc, "moderator", project=name)  # waits in the reviewers' queue
    assert item is not None and item.loop.name == "portrait-review"
    assert item.choices == (NON_EXPLICIT, NONE_OF_THE_ABOVE)
    assert item.loop.predictions[0].label == NON_EXPLICIT
    assert item.loop.data_attributes == ("FreeOfPersonallyIdentifiableInformation",)
    review.release_item(server.svc, item.loop, "moderator")

    # the same request again: the same loop; another name for the image waiting already: that loop
    again = rek.detect_moderation_labels(Image={"Bytes": portrait}, HumanLoopConfig=config)
    assert again["HumanLoopActivationOutput"]["HumanLoopArn"] == loop_arn
    other = rek.detect_moderation_labels(
        Image={"Bytes": portrait},
        HumanLoopConfig={"HumanLoopName": "portrait-again", "FlowDefinitionArn": arn},
    )
    assert other["HumanLoopActivationOutput"]["HumanLoopArn"] == loop_arn
    assert (
        _code(lambda: a2i.describe_human_loop(HumanLoopName="portrait-again")) == "ResourceNotFoundException"
    )


def test_a_photo_that_does_not_meet_it_starts_none(
    rek: Any, sm: Any, a2i: Any, server: Server, banana: bytes
) -> None:
    _, arn = _flow(sm, server)
    server.svc.buckets.create_bucket("moderation-in")
    server.svc.buckets.put("moderation-in", "banana.jpg", banana)
    r = rek.detect_moderation_labels(
        Image={"S3Object": {"Bucket": "moderation-in", "Name": "banana.jpg"}},
        HumanLoopConfig={"HumanLoopName": "banana-review", "FlowDefinitionArn": arn},
    )
    assert r["ModerationLabels"] == [] and r["ContentTypes"] == []
    out = r["HumanLoopActivationOutput"]
    assert "HumanLoopArn" not in out and "HumanLoopActivationReasons" not in out
    assert (
        json.loads(out["HumanLoopActivationConditionsEvaluationResults"])["Conditions"][0]["EvaluationResult"]
        is False
    )
    assert a2i.list_human_loops(FlowDefinitionArn=arn)["HumanLoopSummaries"] == []


def test_sampling_decides_the_same_way_each_time(
    rek: Any, sm: Any, a2i: Any, server: Server, banana: bytes
) -> None:
    name = server.name("sampled")
    always = {
        "Conditions": [
            {"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 100}}
        ]
    }
    arn = create_moderation_flow(
        sm,
        name,
        HumanLoopActivationConfig={
            "HumanLoopActivationConditionsConfig": {"HumanLoopActivationConditions": json.dumps(always)}
        },
    )
    r = rek.detect_moderation_labels(
        Image={"Bytes": banana}, HumanLoopConfig={"HumanLoopName": "sampled-banana", "FlowDefinitionArn": arn}
    )
    assert r["HumanLoopActivationOutput"]["HumanLoopArn"].endswith("/sampled-banana")
    # the flow offers every top-level moderation category when its conditions name no label
    item = review.next_item(server.svc, "moderator", project=name)
    assert item is not None and "Explicit" in item.choices and "Violence" in item.choices
    review.release_item(server.svc, item.loop, "moderator")


def test_errors(
    rek: Any, sm: Any, server: Server, portrait: bytes, banana: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, arn = _flow(sm, server)

    def detect(image: bytes = portrait, **config: Any) -> Any:
        return lambda: rek.detect_moderation_labels(Image={"Bytes": image}, HumanLoopConfig=config)

    unknown = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:flow-definition/no-such-flow"
    assert _code(detect(HumanLoopName="x", FlowDefinitionArn=unknown)) == "ResourceNotFoundException"
    assert _code(detect(HumanLoopName="Bad_Name", FlowDefinitionArn=arn)) == "InvalidParameterException"
    assert _code(detect(HumanLoopName="x", FlowDefinitionArn="not-an-arn")) == "InvalidParameterException"
    assert (
        _code(
            detect(
                HumanLoopName="x",
                FlowDefinitionArn=arn,
                DataAttributes={"ContentClassifiers": ["FreeOfEverything"]},
            )
        )
        == "InvalidParameterException"
    )
    custom = sm.create_flow_definition(
        FlowDefinitionName=server.name("not-moderation"),
        HumanLoopConfig=human_loop_config(),
        OutputConfig={"S3OutputPath": "s3://flow-output/"},
        RoleArn=ROLE,
    )["FlowDefinitionArn"]
    assert _code(detect(HumanLoopName="x", FlowDefinitionArn=custom)) == "InvalidParameterException"

    rek.detect_moderation_labels(
        Image={"Bytes": portrait}, HumanLoopConfig={"HumanLoopName": "taken-name", "FlowDefinitionArn": arn}
    )
    # the name is taken by a loop with another input
    sampled = _flow(sm, server)[1]
    assert _code(detect(HumanLoopName="taken-name", FlowDefinitionArn=sampled)) == "InvalidParameterException"

    monkeypatch.setattr("visionloop.core.review.loops.MAX_OPEN_LOOPS", 1)  # the flow has its one open loop
    with pytest.raises(rek.exceptions.HumanLoopQuotaExceededException) as e:
        rek.detect_moderation_labels(
            Image={"Bytes": image_of_other_person()},
            HumanLoopConfig={"HumanLoopName": "over-quota", "FlowDefinitionArn": arn},
        )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert e.value.response["ServiceCode"] == "sagemaker"


def image_of_other_person() -> bytes:
    """Another image with the same moderation label as the portrait (a mirrored copy of it)."""
    from io import BytesIO

    from PIL import Image, ImageOps

    with Image.open(shared_dataset("faces") / "person_10" / "img44.jpg") as img:
        out = BytesIO()
        ImageOps.mirror(img.convert("RGB")).save(out, "JPEG", quality=95)
    return out.getvalue()
