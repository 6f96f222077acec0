"""Flow definitions, one per project: put_flow, get_flow, find_flow, ensure_flow, flow_by_arn and the
choices a reviewer is offered (flow_choices)."""

from __future__ import annotations

import re
from dataclasses import replace

from visionloop.core.keys import check_bucket
from visionloop.core.projects import get_project
from visionloop.core.records.review import (
    NONE_OF_THE_ABOVE,
    FlowDefinition,
    FlowSettings,
    QueueOrder,
    flow_arn,
)
from visionloop.core.review.checks import MAX_REVIEWERS
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound

_FLOW_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")


def check_flow_settings(s: FlowSettings) -> FlowSettings:
    """The settings, validated: InvalidInput names the bad field."""

    def integer(name: str, value: object, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InvalidInput(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
        return value

    integer("reviewers_per_item", s.reviewers_per_item, 1, MAX_REVIEWERS)
    integer("time_limit_seconds", s.time_limit_seconds, 60, 365 * 24 * 3600)
    integer("lease_seconds", s.lease_seconds, 10, 7 * 24 * 3600)
    if s.daily_budget is not None:
        integer("daily_budget", s.daily_budget, 1, 10_000_000)
    if s.min_confidence is not None and (
        isinstance(s.min_confidence, bool)
        or not isinstance(s.min_confidence, int | float)
        or not 0 <= s.min_confidence <= 100
    ):
        raise InvalidInput(f"min_confidence must be between 0 and 100, not {s.min_confidence!r}")
    if (
        isinstance(s.audit_rate, bool)
        or not isinstance(s.audit_rate, int | float)
        or not 0 <= s.audit_rate <= 1
    ):
        raise InvalidInput(f"audit_rate must be between 0 and 1, not {s.audit_rate!r}")
    if len(s.instructions) > 10_000:
        raise InvalidInput("instructions may be at most 10,000 characters")
    labels = tuple(dict.fromkeys(s.labels))
    for label in labels:
        if not isinstance(label, str) or not label.strip() or len(label) > 256:
            raise InvalidInput(f"invalid label choice {str(label)[:80]!r}")
        if label == NONE_OF_THE_ABOVE:
            raise InvalidInput(f"{NONE_OF_THE_ABOVE!r} is always offered; do not list it")
    check_bucket(s.output_bucket)
    return replace(s, labels=labels, queue_order=QueueOrder(s.queue_order))


def put_flow(
    svc: Services,
    project_name: str,
    settings: FlowSettings,
    *,
    region: str,
    account: str,
    name: str | None = None,
) -> FlowDefinition:
    """Create the project's flow definition, or replace its settings (its name and ARN never change;
    ``name`` defaults to the project's name)."""
    project = get_project(svc, project_name)
    checked = check_flow_settings(settings)
    existing = svc.repo.find_flow(project.id)
    now = svc.clock.now()
    if existing is not None:
        if name is not None and name != existing.name:
            raise Conflict(f"the project's flow is named {existing.name!r}; a flow cannot be renamed")
        return svc.repo.update_flow(existing.id, checked, now)
    flow_name = name or project.name
    if not _FLOW_NAME.match(flow_name):
        raise InvalidInput(
            f"invalid flow name {flow_name[:80]!r}: use 1-255 letters, digits, '_', '.' or '-'"
        )
    return svc.repo.create_flow(project.id, flow_name, flow_arn(region, account, flow_name), checked, now)


def ensure_flow(svc: Services, project_name: str, *, region: str, account: str) -> FlowDefinition:
    """The project's flow; the default one (named after the project) is created when it has none."""
    project = get_project(svc, project_name)
    flow = svc.repo.find_flow(project.id)
    if flow is not None:
        return flow
    try:
        return put_flow(svc, project_name, FlowSettings(), region=region, account=account)
    except AlreadyExists:  # created meanwhile by another request
        found = svc.repo.find_flow(project.id)
        if found is None:
            raise
        return found


def find_flow(svc: Services, project_name: str) -> FlowDefinition | None:
    return svc.repo.find_flow(get_project(svc, project_name).id)


def get_flow(svc: Services, project_name: str) -> FlowDefinition:
    flow = find_flow(svc, project_name)
    if flow is None:
        raise NotFound(f"project {project_name!r} has no review flow")
    return flow


def flow_by_arn(
    svc: Services, arn: str, *, region: str, account: str, create: bool = True
) -> FlowDefinition | None:
    """The flow an ARN names. A project's default flow is created on first use (its name is the
    project's; with ``create=False`` None is returned instead); other unknown names are NotFound."""
    name = arn.rsplit(":flow-definition/", 1)[-1] if ":flow-definition/" in arn else ""
    if not name:
        raise InvalidInput(f"{arn[:200]!r} is not a flow definition ARN")
    flow = svc.repo.get_flow_by_name(name)
    if flow is None:
        try:
            get_project(svc, name)
        except NotFound:
            raise NotFound(f"flow definition {name!r} does not exist") from None
        if arn != flow_arn(region, account, name):
            raise NotFound(
                f"flow definition {arn[:200]!r} does not exist (this server's region and account differ)"
            )
        if not create:
            return None
        flow = ensure_flow(svc, name, region=region, account=account)
        if flow.name != name:
            raise NotFound(f"flow definition {name!r} does not exist")
    if flow.arn != arn:
        raise NotFound(f"flow definition {arn[:200]!r} does not exist (it is {flow.arn})")
    return flow


def flow_choices(svc: Services, flow: FlowDefinition) -> tuple[str, ...]:
    """The labels a reviewer may choose, NONE_OF_THE_ABOVE last."""
    labels = flow.settings.labels or tuple(svc.repo.list_labels(flow.project_id))
    return (*labels, NONE_OF_THE_ABOVE)
