"""The code a model version's page offers to copy, as the Rekognition console's "Use model" tab does:
start the version, detect labels in a photo, stop it — with boto3 and with the AWS CLI, filled in with
this server's endpoint URL (as the browser reached it), the version's ARN and its project's.

The access key in the code is "test" when the server checks none (any pair works then: the SDK only
needs one to sign); when the server has access keys, a placeholder, never a key of the server's."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from visionloop.core import ids
from visionloop.core.entities import ModelVersion, Project

PHOTO = "photo.jpg"


@dataclass(frozen=True)
class ModelSnippets:
    """What the page shows under "Use this model"."""

    endpoint_url: str
    version_arn: str
    project_arn: str
    boto3: str
    aws_cli: str
    keys_needed: bool  # the server checks access keys: the code has placeholders for them


def model_snippets(
    endpoint_url: str, region: str, account: str, project: Project, version: ModelVersion, keys_needed: bool
) -> ModelSnippets:
    endpoint = endpoint_url.rstrip("/")
    version_arn = ids.version_arn(region, account, project.name, version.name, version.created_at)
    project_arn = ids.project_arn(region, account, project.name, project.created_at)
    key_id, secret = ("YOUR_ACCESS_KEY_ID", "YOUR_SECRET_ACCESS_KEY") if keys_needed else ("test", "test")
    units = version.min_inference_units or 1
    boto3 = f'''import boto3

rekognition = boto3.client(
    "rekognition",
    endpoint_url="{endpoint}",
    region_name="{region}",
    aws_access_key_id="{key_id}",
    aws_secret_access_key="{secret}",
)
model_arn = "{version_arn}"

# start the model and wait until it runs
rekognition.start_project_version(ProjectVersionArn=model_arn, MinInferenceUnits={units})
rekognition.get_waiter("project_version_running").wait(
    ProjectArn="{project_arn}", VersionNames=["{version.name}"]
)

# the labels in a photo, each above its assumed threshold
with open("{PHOTO}", "rb") as photo:
    answer = rekognition.detect_custom_labels(ProjectVersionArn=model_arn, Image={{"Bytes": photo.read()}})
for label in answer["CustomLabels"]:
    print(label["Name"], round(label["Confidence"], 1), "%")

# stop the model when it is no longer needed
rekognition.stop_project_version(ProjectVersionArn=model_arn)
'''
    q_endpoint, q_arn = shlex.quote(endpoint), shlex.quote(version_arn)
    aws_cli = f"""export AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION={region}

aws rekognition start-project-version --endpoint-url {q_endpoint} \\
  --project-version-arn {q_arn} --min-inference-units {units}

aws rekognition detect-custom-labels --endpoint-url {q_endpoint} \\
  --project-version-arn {q_arn} --image-bytes fileb://{PHOTO}

aws rekognition stop-project-version --endpoint-url {q_endpoint} \\
  --project-version-arn {q_arn}
"""
    return ModelSnippets(endpoint, version_arn, project_arn, boto3, aws_cli, keys_needed)
