"""The members of a SageMaker flow-definition request, checked as the model constrains them (botocore checks
only required members, types and lengths; other SDKs and hand-written clients check nothing), with AWS's
wording: ``1 validation error detected: Value '…' at 'member' failed to satisfy constraint: …``.
``create_request`` turns a CreateFlowDefinition request into what a review flow stores (FlowRequest)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from visionloop.a2i.exceptions import ValidationException
from visionloop.a2i.responses import invalid
from visionloop.core.records.review import DEFAULT_TIME_LIMIT_SECONDS
from visionloop.sagemaker import conditions

Json = dict[str, Any]
FLOW_NAME = re.compile(r"[a-z0-9](-*[a-z0-9]){0,62}")
ANY_FLOW_NAME = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")  # a project's own flow may be named like the project
ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
WORKTEAM_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:workteam/.*")
TASK_UI_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:human-task-ui/.*")
S3_URI = re.compile(r"s3://([^/]+)/?(.*)")
KEYWORD = re.compile(r"[A-Za-z0-9]+( [A-Za-z0-9]+)*")
MODERATION_SOURCE = "AWS/Rekognition/DetectModerationLabels/Image/V3"
REQUEST_SOURCES = (MODERATION_SOURCE, "AWS/Textract/AnalyzeDocument/Forms/V1")
PROJECT_TAG = "visionloop:project"  # the project whose flow this is (default: the project named like it)
DEFAULT_TASK_TIME_LIMIT = 3600  # AWS's default TaskTimeLimitInSeconds
MAX_TASK_TIME_LIMIT = 7 * 24 * 3600  # the longest lease a review flow keeps
MAX_AVAILABILITY = DEFAULT_TIME_LIMIT_SECONDS  # 10 days, A2I's longest for a private workforce
MIN_AVAILABILITY = 60  # the shortest time limit a review flow keeps


def _lower(path: str) -> str:
    return ".".join(part[:1].lower() + part[1:] for part in path.split("."))


def string(
    doc: Mapping[str, Any],
    key: str,
    path: str = "",
    *,
    required: bool = False,
    lo: int = 0,
    hi: int = 1024,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    member = _lower(f"{path}{key}")
    value = doc.get(key)
    if value is None:
        if required:
            raise invalid(member, None, "Member must not be null")
        return None
    if not isinstance(value, str):
        raise ValidationException(f"'{member}' must be a string")
    if len(value) < lo:
        raise invalid(member, value, f"Member must have length greater than or equal to {lo}")
    if len(value) > hi:
        raise invalid(member, value, f"Member must have length less than or equal to {hi}")
    if pattern is not None and not pattern.fullmatch(value):
        raise invalid(member, value, f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def integer(doc: Mapping[str, Any], key: str, path: str, lo: int, hi: int) -> int | None:
    member = _lower(f"{path}{key}")
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationException(f"'{member}' must be an integer")
    if value < lo:
        raise invalid(member, value, f"Member must have value greater than or equal to {lo}")
    if value > hi:
        raise invalid(member, value, f"Member must have value less than or equal to {hi}")
    return value


def struct(doc: Mapping[str, Any], key: str, path: str = "", *, required: bool = False) -> Json | None:
    member = _lower(f"{path}{key}")
    value = doc.get(key)
    if value is None:
        if required:
            raise invalid(member, None, "Member must not be null")
        return None
    if not isinstance(value, dict):
        raise ValidationException(f"'{member}' must be an object")
    return value


def flow_name(value: object, strict: bool = False) -> str:
    """A flow definition's name: CreateFlowDefinition's pattern when ``strict``; else also the name of a
    project's own flow (letters, digits, '_', '.', '-')."""
    name = string({"FlowDefinitionName": value}, "FlowDefinitionName", required=True, lo=1, hi=255)
    assert name is not None
    if strict:
        string({"FlowDefinitionName": name}, "FlowDefinitionName", hi=63, pattern=FLOW_NAME)
    elif not ANY_FLOW_NAME.fullmatch(name):
        pattern = f"Member must satisfy regular expression pattern: {FLOW_NAME.pattern}"
        raise invalid("flowDefinitionName", name, pattern)
    return name


@dataclass(frozen=True)
class FlowRequest:
    """A CreateFlowDefinition request, checked: what the review flow's settings take, the project it is
    for (None: the project named like the flow), the parsed activation conditions, and the request as
    given (kept, so that DescribeFlowDefinition answers it)."""

    name: str
    project: str | None
    reviewers_per_item: int
    lease_seconds: int
    time_limit_seconds: int
    instructions: str
    output_bucket: str
    request_source: str | None
    conditions: Json | None
    definition: Json


def create_request(body: Mapping[str, Any]) -> FlowRequest:
    name = flow_name(body.get("FlowDefinitionName"), strict=True)
    output = struct(body, "OutputConfig", required=True)
    assert output is not None
    path = string(output, "S3OutputPath", "OutputConfig.", required=True, hi=1024)
    found = S3_URI.fullmatch(path or "")
    if found is None:
        raise invalid(
            "outputConfig.s3OutputPath", path, "Member must be an s3:// URI of this server's buckets"
        )
    string(output, "KmsKeyId", "OutputConfig.", hi=2048)
    string(body, "RoleArn", required=True, lo=20, hi=2048, pattern=ROLE_ARN)
    source = _request_source(body)
    doc = _activation(body, source)
    config = struct(body, "HumanLoopConfig")
    task = _human_loop_config(config) if config is not None else {}
    return FlowRequest(
        name=name,
        project=_tags(body),
        reviewers_per_item=task.get("TaskCount") or 1,
        lease_seconds=task.get("TaskTimeLimitInSeconds") or DEFAULT_TASK_TIME_LIMIT,
        time_limit_seconds=task.get("TaskAvailabilityLifetimeInSeconds") or DEFAULT_TIME_LIMIT_SECONDS,
        instructions=task.get("TaskDescription") or "",
        output_bucket=found.group(1),
        request_source=source,
        conditions=doc,
        definition={k: v for k, v in body.items() if k != "FlowDefinitionName"},
    )


def _request_source(body: Mapping[str, Any]) -> str | None:
    source = struct(body, "HumanLoopRequestSource")
    if source is None:
        return None
    value = string(source, "AwsManagedHumanLoopRequestSource", "HumanLoopRequestSource.", required=True)
    if value not in REQUEST_SOURCES:
        raise invalid(
            "humanLoopRequestSource.awsManagedHumanLoopRequestSource",
            value,
            f"Member must satisfy enum value set: [{', '.join(REQUEST_SOURCES)}]",
        )
    return value


def _activation(body: Mapping[str, Any], source: str | None) -> Json | None:
    """The activation conditions, parsed; a Rekognition flow needs them, and they need a request source."""
    activation = struct(body, "HumanLoopActivationConfig")
    if activation is None:
        if source == MODERATION_SOURCE:
            raise ValidationException(
                "HumanLoopActivationConfig is required with the request source "
                f"{MODERATION_SOURCE}: it says which moderation answers go to people."
            )
        return None
    if source is None:
        raise ValidationException("HumanLoopActivationConfig needs a HumanLoopRequestSource.")
    path = "HumanLoopActivationConfig."
    inner = struct(activation, "HumanLoopActivationConditionsConfig", path, required=True)
    assert inner is not None
    text = string(
        inner,
        "HumanLoopActivationConditions",
        path + "HumanLoopActivationConditionsConfig.",
        required=True,
        hi=10240,
    )
    assert text is not None
    if source != MODERATION_SOURCE:  # Textract's conditions are kept as given; nothing here evaluates them
        return None
    try:
        return conditions.parse(text)
    except ValueError as e:
        raise ValidationException(str(e)) from None


def _human_loop_config(config: Mapping[str, Any]) -> Json:
    path = "HumanLoopConfig."
    string(config, "WorkteamArn", path, required=True, hi=256, pattern=WORKTEAM_ARN)
    string(config, "HumanTaskUiArn", path, required=True, hi=1024, pattern=TASK_UI_ARN)
    string(config, "TaskTitle", path, required=True, lo=1, hi=128)
    out: Json = {
        "TaskDescription": string(config, "TaskDescription", path, required=True, lo=1, hi=255),
        "TaskCount": integer(config, "TaskCount", path, 1, 3),
        "TaskTimeLimitInSeconds": integer(config, "TaskTimeLimitInSeconds", path, 30, MAX_TASK_TIME_LIMIT),
        "TaskAvailabilityLifetimeInSeconds": integer(
            config, "TaskAvailabilityLifetimeInSeconds", path, MIN_AVAILABILITY, MAX_AVAILABILITY
        ),
    }
    if out["TaskCount"] is None:
        raise invalid("humanLoopConfig.taskCount", None, "Member must not be null")
    keywords = config.get("TaskKeywords")
    if keywords is not None:
        if not isinstance(keywords, list) or not 1 <= len(keywords) <= 5:
            raise ValidationException("'humanLoopConfig.taskKeywords' must be a list of 1 to 5 keywords")
        for k in keywords:
            string({"TaskKeywords": k}, "TaskKeywords", path, lo=1, hi=30, pattern=KEYWORD)
    if config.get("PublicWorkforceTaskPrice") is not None:
        struct(config, "PublicWorkforceTaskPrice", path)
    return out


def _tags(body: Mapping[str, Any]) -> str | None:
    """The project a ``visionloop:project`` tag names; the tags are checked as SageMaker's."""
    tags = body.get("Tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or len(tags) > 50:
        raise ValidationException("'tags' must be a list of at most 50 {Key, Value} objects")
    project = None
    for tag in tags:
        if not isinstance(tag, dict):
            raise ValidationException("'tags' must be a list of {Key, Value} objects")
        key = string(tag, "Key", "Tags.", required=True, lo=1, hi=128)
        value = string(tag, "Value", "Tags.", required=True, hi=256)
        if key == PROJECT_TAG:
            project = value
    return project
