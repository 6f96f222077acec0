"""One function per A2I runtime operation: check the request as the model constrains it (botocore checks
only required members, types and minimums), call the backend, serialize. Validation messages follow AWS's
wording: ``1 validation error detected: Value '…' at 'humanLoopName' failed to satisfy constraint: …``.
Timestamps leave as epoch seconds (JSON numbers); ListHumanLoops reads its query timestamps as ISO-8601
(what botocore sends) or epoch seconds."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from visionloop.a2i.backend import A2IBackend
from visionloop.a2i.exceptions import ValidationException
from visionloop.aws import pagination
from visionloop.aws.exceptions import InvalidPaginationTokenException
from visionloop.core.records.review import HumanLoop
from visionloop.core.review import MAX_INPUT_CHARS

Json = dict[str, Any]
LOOP_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
FLOW_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:flow-definition/.*")
CONTENT_CLASSIFIERS = ("FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent")
SORT_ORDERS = ("Ascending", "Descending")
MAX_RESULTS = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def invalid(member: str, value: object, constraint: str) -> ValidationException:
    shown = value if isinstance(value, str | int | float) and not isinstance(value, bool) else "null"
    if isinstance(shown, str) and len(shown) > 200:
        shown = shown[:200] + "…"
    return ValidationException(
        f"1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: "
        f"{constraint}"
    )


def loop_name(value: object, member: str = "humanLoopName") -> str:
    if value is None or value == "":
        raise invalid(member, value, "Member must not be null")
    if not isinstance(value, str):
        raise ValidationException(f"'{member}' must be a string")
    if len(value) > 63:
        raise invalid(member, value, "Member must have length less than or equal to 63")
    if not LOOP_NAME.match(value):
        raise invalid(member, value, f"Member must satisfy regular expression pattern: {LOOP_NAME.pattern}")
    return value


def flow_arn(value: object) -> str:
    if value is None or value == "":
        raise invalid("flowDefinitionArn", value, "Member must not be null")
    if not isinstance(value, str):
        raise ValidationException("'flowDefinitionArn' must be a string")
    if len(value) > 1024:
        raise invalid("flowDefinitionArn", value, "Member must have length less than or equal to 1024")
    if not FLOW_ARN.fullmatch(value):
        raise invalid(
            "flowDefinitionArn", value, f"Member must satisfy regular expression pattern: {FLOW_ARN.pattern}"
        )
    return value


# --- operations ----------------------------------------------------------------------------------------


def start_human_loop(backend: A2IBackend, body: Json) -> Json:
    name = loop_name(body.get("HumanLoopName"))
    arn = flow_arn(body.get("FlowDefinitionArn"))
    loop_input = body.get("HumanLoopInput")
    if loop_input is None:
        raise invalid("humanLoopInput", None, "Member must not be null")
    if not isinstance(loop_input, dict):
        raise ValidationException("'humanLoopInput' must be an object with InputContent")
    content = loop_input.get("InputContent")
    if content is None:
        raise invalid("humanLoopInput.inputContent", None, "Member must not be null")
    if not isinstance(content, str):
        raise ValidationException("'humanLoopInput.inputContent' must be a string (a JSON document)")
    if len(content) > MAX_INPUT_CHARS:
        raise invalid(
            "humanLoopInput.inputContent",
            f"{len(content)} characters",
            f"Member must have length less than or equal to {MAX_INPUT_CHARS}",
        )
    loop = backend.start_human_loop(name, arn, content, _data_attributes(body.get("DataAttributes")))
    return {"HumanLoopArn": loop.arn}


def _data_attributes(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ValidationException("'dataAttributes' must be an object with ContentClassifiers")
    found = value.get("ContentClassifiers")
    if found is None:
        raise invalid("dataAttributes.contentClassifiers", None, "Member must not be null")
    if not isinstance(found, list) or not all(isinstance(c, str) for c in found):
        raise ValidationException("'dataAttributes.contentClassifiers' must be a list of strings")
    if len(found) > 256:
        raise invalid(
            "dataAttributes.contentClassifiers",
            len(found),
            "Member must have length less than or equal to 256",
        )
    for c in found:
        if c not in CONTENT_CLASSIFIERS:
            raise invalid(
                "dataAttributes.contentClassifiers",
                c,
                f"Member must satisfy enum value set: [{', '.join(CONTENT_CLASSIFIERS)}]",
            )
    return tuple(dict.fromkeys(found))


def describe_human_loop(backend: A2IBackend, name: str) -> Json:
    return loop_json(backend.describe_human_loop(loop_name(name)))


def stop_human_loop(backend: A2IBackend, body: Json) -> Json:
    backend.stop_human_loop(loop_name(body.get("HumanLoopName")))
    return {}


def delete_human_loop(backend: A2IBackend, name: str) -> Json:
    backend.delete_human_loop(loop_name(name))
    return {}


def list_human_loops(backend: A2IBackend, query: Mapping[str, str]) -> Json:
    arn = flow_arn(query.get("FlowDefinitionArn"))
    after = _reported_bound(_timestamp(query, "CreationTimeAfter"), upper=False)
    before = _reported_bound(_timestamp(query, "CreationTimeBefore"), upper=True)
    order = query.get("SortOrder", "Descending")
    if order not in SORT_ORDERS:
        raise invalid("sortOrder", order, f"Member must satisfy enum value set: [{', '.join(SORT_ORDERS)}]")
    limit = _max_results(query.get("MaxResults"))
    scope = _scope(arn, after, before, order)
    token = query.get("NextToken")
    if token is not None and len(token) > 8192:
        raise invalid("nextToken", token, "Member must have length less than or equal to 8192")
    try:
        offset = pagination.decode(token, scope) if token else 0
    except InvalidPaginationTokenException:
        raise ValidationException("The NextToken is not valid for this request.") from None
    loops = backend.list_human_loops(arn, after, before, order == "Ascending", offset, limit + 1)
    out: Json = {"HumanLoopSummaries": [summary_json(lp) for lp in loops[:limit]]}
    if len(loops) > limit:
        out["NextToken"] = pagination.encode(offset + limit, scope)
    return out


def _timestamp(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    member = name[:1].lower() + name[1:]
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", raw):
            return datetime.fromtimestamp(float(raw), UTC)
        # botocore writes a year before 1000 without its leading zeros ("1-01-01T00:00:00Z")
        padded = re.sub(r"^\d{1,3}(?=-)", lambda m: m.group().zfill(4), raw)
        when = datetime.fromisoformat(padded.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise ValidationException(f"'{member}' must be an ISO-8601 timestamp, not '{raw[:60]}'") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _reported_bound(when: datetime | None, upper: bool) -> datetime | None:
    """A CreationTime bound compared at the precision CreationTime is reported in (milliseconds; the
    database keeps microseconds): a loop's own reported CreationTime, given back as either bound, finds
    it. The bound is taken to the nearest millisecond (a client's float seconds may read 12.344999 for
    12.345); an upper bound then takes in every microsecond that millisecond reports."""
    if when is None:
        return None
    ms = round((when - EPOCH) / timedelta(milliseconds=1))
    try:
        bound = EPOCH + timedelta(milliseconds=ms)
        return bound + timedelta(microseconds=999) if upper else bound
    except OverflowError:  # within a millisecond of datetime's own limits: no loop is that old or new
        return when


def _max_results(raw: str | None) -> int:
    if raw is None:
        return MAX_RESULTS
    try:
        value = int(raw)
    except ValueError:
        raise ValidationException(f"'maxResults' must be an integer, not '{raw[:40]}'") from None
    if value < 1:
        raise invalid("maxResults", value, "Member must have value greater than or equal to 1")
    if value > MAX_RESULTS:
        raise invalid("maxResults", value, f"Member must have value less than or equal to {MAX_RESULTS}")
    return value


def _scope(arn: str, after: datetime | None, before: datetime | None, order: str) -> str:
    text = json.dumps(["ListHumanLoops", arn, str(after), str(before), order])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- serialization -------------------------------------------------------------------------------------


def _epoch(when: datetime) -> float:
    """Epoch seconds cut to whole milliseconds (not rounded: a loop then lies inside the millisecond it
    reports, which is what ListHumanLoops' bounds compare)."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return ((aware - EPOCH) // timedelta(milliseconds=1)) / 1000


def loop_json(loop: HumanLoop) -> Json:
    out: Json = {
        "CreationTime": _epoch(loop.created_at),
        "HumanLoopStatus": loop.status.value,
        "HumanLoopName": loop.name,
        "HumanLoopArn": loop.arn,
        "FlowDefinitionArn": loop.flow_arn,
    }
    if loop.failure_code:
        out["FailureCode"] = loop.failure_code
    if loop.failure_reason:
        out["FailureReason"] = loop.failure_reason
    if loop.output_uri:
        out["HumanLoopOutput"] = {"OutputS3Uri": loop.output_uri}
    return out


def summary_json(loop: HumanLoop) -> Json:
    out: Json = {
        "HumanLoopName": loop.name,
        "HumanLoopStatus": loop.status.value,
        "CreationTime": _epoch(loop.created_at),
        "FlowDefinitionArn": loop.flow_arn,
    }
    if loop.failure_reason:
        out["FailureReason"] = loop.failure_reason
    return out


__all__ = [
    "delete_human_loop",
    "describe_human_loop",
    "list_human_loops",
    "loop_json",
    "start_human_loop",
    "stop_human_loop",
]
