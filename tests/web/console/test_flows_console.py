"""The console's Review flows page: a flow created over the SageMaker protocol (the app's own POST / with
X-Amz-Target SageMaker.CreateFlowDefinition) and a project's own flow are listed with their settings;
the page is for operators."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.factories import make_project
from tests.web.conftest import sign_in
from visionloop.core.records.review import FlowSettings
from visionloop.core.review import put_flow
from visionloop.core.services import Services
from visionloop.settings import Settings

CONDITIONS = {
    "Conditions": [
        {
            "ConditionType": "ModerationLabelConfidenceCheck",
            "ConditionParameters": {"ModerationLabelName": "Suggestive", "ConfidenceLessThan": 90},
        }
    ]
}


def create_flow(client: TestClient, settings: Settings, name: str) -> dict[str, str]:
    account, region = settings.account_id, settings.region
    body = {
        "FlowDefinitionName": name,
        "HumanLoopRequestSource": {
            "AwsManagedHumanLoopRequestSource": "AWS/Rekognition/DetectModerationLabels/Image/V3"
        },
        "HumanLoopActivationConfig": {
            "HumanLoopActivationConditionsConfig": {"HumanLoopActivationConditions": json.dumps(CONDITIONS)}
        },
        "HumanLoopConfig": {
            "WorkteamArn": f"arn:aws:sagemaker:{region}:{account}:workteam/private-crowd/team",
            "HumanTaskUiArn": f"arn:aws:sagemaker:{region}:{account}:human-task-ui/ui",
            "TaskTitle": "Moderate the shop's photos",
            "TaskDescription": "Say which label fits.",
            "TaskCount": 2,
            "TaskTimeLimitInSeconds": 900,
        },
        "OutputConfig": {"S3OutputPath": "s3://moderation-out/"},
        "RoleArn": f"arn:aws:iam::{account}:role/review",
    }
    headers = {"X-Amz-Target": "SageMaker.CreateFlowDefinition", "Content-Type": "application/x-amz-json-1.1"}
    r = client.post("/", content=json.dumps(body), headers=headers)
    assert r.status_code == 200, r.text
    found: dict[str, str] = r.json()
    return found


def test_flows_are_listed_with_their_settings(
    client: TestClient, olga: str, services: Services, settings: Settings
) -> None:
    empty = client.get("/console/flows")
    assert empty.status_code == 200 and 'id="no-flows"' in empty.text
    assert 'href="/console/flows" aria-current="page"' in empty.text  # its tab is the current one
    arn = create_flow(client, settings, "shop-moderation")["FlowDefinitionArn"]
    make_project(services, "fruit")
    put_flow(
        services,
        "fruit",
        FlowSettings(instructions="Pick the fruit."),
        region=settings.region,
        account=settings.account_id,
    )

    page = client.get("/console/flows")
    assert page.status_code == 200
    text = page.text
    assert 'id="flow-shop-moderation"' in text and arn in text
    assert "for AWS/Rekognition/DetectModerationLabels/Image/V3" in text
    assert "15 minutes" in text and "10 days" in text  # how long a reviewer holds an image, may wait
    assert "Moderate the shop&#39;s photos" in text and "Say which label fits." in text
    assert "&#34;ModerationLabelName&#34;: &#34;Suggestive&#34;" in text  # the conditions, as given
    assert "s3://moderation-out/shop-moderation/" in text
    # the project the flow made, linked to where its settings change
    assert 'href="/console/projects/shop-moderation/review"' in text
    assert 'id="flow-fruit"' in text and "Pick the fruit." in text and "the project's labels" in text


def test_the_page_is_for_operators(client: TestClient) -> None:
    r = client.get("/console/flows", follow_redirects=False)
    assert r.status_code == 303 and "sign" in r.headers["location"]
    sign_in(client, "alice")  # a reviewer
    assert client.get("/console/flows").status_code == 403
