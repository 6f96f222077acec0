"""One function per SageMaker operation: check the request (requests.py), call the backend, serialize.
Timestamps leave as epoch seconds (JSON numbers, milliseconds kept), as SageMaker's JSON 1.1 does.

A flow that was not created over this API (a project's own flow, made by the native API or on first use)
has no request kept: DescribeFlowDefinition answers its settings, with the work team of this server's
reviewers (``workteam/private-crowd/visionloop-reviewers``), a task UI and a role named after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from visionloop.a2i.exceptions import ValidationException
from visionloop.a2i.responses import invalid
from visionloop.aws import pagination
from visionloop.aws.exceptions import InvalidPaginationTokenException
from visionloop.core.records.review import FlowDefinition
from visionloop.sagemaker import requests
from visionloop.sagemaker.backend import SageMakerBackend

Json = dict[str, Any]
SORT_ORDERS = ("Ascending", "Descending")
ACTIVE = "Active"
DEFAULT_DESCRIPTION = "Choose the label that fits the image."


def create_flow_definition(backend: SageMakerBackend, body: Json) -> Json:
    """partial: a project's review flow; work team, task UI, role and S3 prefix are kept, not used.

    TaskCount, TaskTimeLimitInSeconds, TaskAvailabilityLifetimeInSeconds, TaskDescription and the output
    bucket become the flow's settings (backend.py)."""
    flow = backend.create_flow_definition(requests.create_request(body))
    return {"FlowDefinitionArn": flow.arn}


def describe_flow_definition(backend: SageMakerBackend, body: Json) -> Json:
    """The flow as created, with the settings it holds now; a project's own flow too."""
    flow, definition = backend.describe_flow_definition(requests.flow_name(body.get("FlowDefinitionName")))
    return flow_json(flow, definition or {}, backend.region, backend.account)


def delete_flow_definition(backend: SageMakerBackend, body: Json) -> Json:
    """Deletes a flow that has no human loops (ResourceInUse otherwise); its project stays."""
    backend.delete_flow_definition(requests.flow_name(body.get("FlowDefinitionName")))
    return {}


def list_flow_definitions(backend: SageMakerBackend, body: Json) -> Json:
    """Every flow, by creation time (inclusive bounds, SortOrder), paginated."""
    after, before = _timestamp(body, "CreationTimeAfter"), _timestamp(body, "CreationTimeBefore")
    order = body.get("SortOrder", "Descending")
    if order not in SORT_ORDERS:
        raise invalid("sortOrder", order, f"Member must satisfy enum value set: [{', '.join(SORT_ORDERS)}]")
    limit = requests.integer(body, "MaxResults", "", 1, pagination.MAX_RESULTS) or pagination.MAX_RESULTS
    token = requests.string(body, "NextToken", hi=8192)
    scope = hashlib.sha256(json.dumps(["ListFlowDefinitions", str(after), str(before), order]).encode())
    try:
        offset = pagination.decode(token, scope.hexdigest()[:16]) if token else 0
    except InvalidPaginationTokenException:
        raise ValidationException("The NextToken is not valid for this request.") from None
    flows = backend.list_flow_definitions(after, before, order == "Ascending")
    out: Json = {"FlowDefinitionSummaries": [summary_json(f) for f in flows[offset : offset + limit]]}
    if offset + limit < len(flows):
        out["NextToken"] = pagination.encode(offset + limit, scope.hexdigest()[:16])
    return out


def _timestamp(body: Mapping[str, Any], name: str) -> datetime | None:
    raw = body.get(name)
    if raw is None:
        return None
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw, UTC)
        if isinstance(raw, str):
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise ValidationException(f"'{name[:1].lower() + name[1:]}' must be a timestamp (epoch seconds)")


# --- serialization -------------------------------------------------------------------------------------


def _epoch(when: datetime) -> float:
    return round(when.timestamp(), 3)


def summary_json(flow: FlowDefinition) -> Json:
    return {
        "FlowDefinitionName": flow.name,
        "FlowDefinitionArn": flow.arn,
        "FlowDefinitionStatus": ACTIVE,
        "CreationTime": _epoch(flow.created_at),
    }


def flow_json(flow: FlowDefinition, definition: Mapping[str, Any], region: str, account: str) -> Json:
    """DescribeFlowDefinition: the request as given, with what the flow's settings hold now (the console
    and the native API may have changed them since)."""
    s = flow.settings
    given = dict(definition.get("HumanLoopConfig") or {})
    config: Json = {
        "WorkteamArn": f"arn:aws:sagemaker:{region}:{account}:workteam/private-crowd/visionloop-reviewers",
        "HumanTaskUiArn": f"arn:aws:sagemaker:{region}:{account}:human-task-ui/{flow.name}",
        "TaskTitle": f"Review {flow.project}",
        **given,
        "TaskDescription": s.instructions or given.get("TaskDescription") or DEFAULT_DESCRIPTION,
        "TaskCount": s.reviewers_per_item,
        "TaskAvailabilityLifetimeInSeconds": s.time_limit_seconds,
        "TaskTimeLimitInSeconds": s.lease_seconds,
    }
    output = dict(definition.get("OutputConfig") or {})
    found = requests.S3_URI.fullmatch(str(output.get("S3OutputPath", "")))
    if found is None or found.group(1) != s.output_bucket:
        output["S3OutputPath"] = f"s3://{s.output_bucket}/"
    out: Json = {
        "FlowDefinitionArn": flow.arn,
        "FlowDefinitionName": flow.name,
        "FlowDefinitionStatus": ACTIVE,
        "CreationTime": _epoch(flow.created_at),
    }
    for key in ("HumanLoopRequestSource", "HumanLoopActivationConfig"):
        if key in definition:
            out[key] = definition[key]
    out["HumanLoopConfig"] = config
    out["OutputConfig"] = output
    out["RoleArn"] = definition.get("RoleArn") or f"arn:aws:iam::{account}:role/visionloop-review"
    return out


OPERATIONS = {
    "CreateFlowDefinition": create_flow_definition,
    "DescribeFlowDefinition": describe_flow_definition,
    "ListFlowDefinitions": list_flow_definitions,
    "DeleteFlowDefinition": delete_flow_definition,
}


def operations_table() -> str:
    """The operations table of docs/aws.md's SageMaker section (its first docstring lines)."""
    rows = ["| Operation | What it does here |", "|---|---|"]
    for name in sorted(OPERATIONS):
        rows.append(f"| `{name}` | {(OPERATIONS[name].__doc__ or '').strip().splitlines()[0]} |")
    return "\n".join(rows)
