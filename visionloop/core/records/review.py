"""Human review records: flows, loops, answers, leases (used by ports.py, storage and review/)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from visionloop.core.entities import Box, ImageInfo, Prediction

NONE_OF_THE_ABOVE = "None of the above"
DEFAULT_OUTPUT_BUCKET = "human-review"
DEFAULT_TIME_LIMIT_SECONDS = 10 * 24 * 3600  # A2I's longest task availability for a private workforce
DEFAULT_LEASE_SECONDS = 10 * 60


class LoopStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


OPEN_STATUSES = (LoopStatus.IN_PROGRESS, LoopStatus.STOPPING)
DELETABLE_STATUSES = (LoopStatus.COMPLETED, LoopStatus.FAILED, LoopStatus.STOPPED)


class LoopPurpose(StrEnum):
    LOW_CONFIDENCE = "low_confidence"  # started by the detection hook
    AUDIT = "audit"  # sampled; recorded and compared, never added to training
    EXPLICIT = "explicit"  # started through an API


class QueueOrder(StrEnum):
    OLDEST = "oldest"  # first come, first served
    LOWEST_MARGIN = "lowest_margin"  # smallest gap between the model's top two labels first


class LoopResult(StrEnum):
    """What a Completed loop did to the training data."""

    ADDED = "added"  # a new TRAIN entry
    NONE_OF_THE_ABOVE = "none_of_the_above"  # nothing added
    AUDIT = "audit"  # recorded only
    DUPLICATE = "duplicate"  # the image is already in TRAIN or TEST: nothing changed
    NO_MAJORITY = "no_majority"  # the reviewers could not agree


class FailureCode(StrEnum):
    EXPIRED = "Expired"
    VALIDATION_ERROR = "ValidationError"
    INTERNAL_ERROR = "InternalError"


@dataclass(frozen=True)
class FlowSettings:
    """The editable part of a flow definition (put_flow)."""

    labels: tuple[str, ...] = ()  # the label choices; empty: the project's labels
    instructions: str = ""
    reviewers_per_item: int = 1
    time_limit_seconds: int = DEFAULT_TIME_LIMIT_SECONDS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    min_confidence: float | None = None  # 0..100; detections whose top confidence is below start loops
    audit_rate: float = 0.0  # 0..1: share of the other detections sampled for audit
    queue_order: QueueOrder = QueueOrder.OLDEST
    daily_budget: int | None = None  # items handed out per UTC day (answers + live leases); None: no cap
    output_bucket: str = DEFAULT_OUTPUT_BUCKET


@dataclass(frozen=True)
class FlowDefinition:
    id: int
    project_id: int
    project: str
    name: str
    arn: str
    boxes: bool  # reviewers draw boxes (object-detection projects)
    settings: FlowSettings
    created_at: datetime
    updated_at: datetime

    @property
    def has_rule(self) -> bool:
        """Whether the detection hook can start loops for this flow."""
        return self.settings.min_confidence is not None or self.settings.audit_rate > 0


@dataclass(frozen=True)
class HumanLoop:
    id: int
    name: str
    flow_id: int
    flow_arn: str
    project_id: int
    status: LoopStatus
    purpose: LoopPurpose
    created_at: datetime
    expires_at: datetime
    image: ImageInfo  # content_hash: the image in the internal store (item_image)
    source_ref: str  # where the image came from (s3://…, or detect://<project>/<version>)
    input_content: str  # the InputContent JSON document, as given
    answers_needed: int
    predictions: tuple[Prediction, ...] = ()  # the model's top guesses, best first
    model_answer: str | None = None  # the model's top label (None: it had no answer)
    margin: float | None = None  # top-1 minus top-2 probability, 0..1 (queue order)
    model_version: str | None = None
    detection_ref: str | None = None  # the detection request that started it
    data_attributes: tuple[str, ...] = ()  # A2I ContentClassifiers
    failure_code: str | None = None
    failure_reason: str | None = None
    completed_at: datetime | None = None
    human_answer: str | None = None  # the majority label; NONE_OF_THE_ABOVE; None until Completed
    agrees: bool | None = None  # human answer == model answer (none of the above agrees with no answer)
    disagreement: bool = False  # the reviewers' answers were not unanimous
    result: LoopResult | None = None
    entry_id: int | None = None  # the TRAIN entry it added
    output_uri: str | None = None  # s3://bucket/key of output.json

    @property
    def arn(self) -> str:
        return loop_arn(self.flow_arn, self.name)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class NewLoop:
    """A loop about to be stored (Repository.create_loop)."""

    name: str
    flow_id: int
    purpose: LoopPurpose
    expires_at: datetime
    image: ImageInfo
    source_ref: str
    input_content: str
    input_hash: str  # sha256 of input_content: same name, other input → AlreadyExists
    answers_needed: int
    predictions: tuple[Prediction, ...] = ()
    model_answer: str | None = None
    margin: float | None = None
    model_version: str | None = None
    detection_ref: str | None = None
    data_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewAnswer:
    loop_id: int
    reviewer: str
    label: str | None  # None: none of the above
    boxes: tuple[Box, ...]
    accepted_at: datetime  # when the lease was taken
    submitted_at: datetime

    @property
    def answer(self) -> str:
        return NONE_OF_THE_ABOVE if self.label is None else self.label


@dataclass(frozen=True)
class Lease:
    loop_id: int
    reviewer: str
    leased_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class ReviewItem:
    """An item leased to one reviewer: show ``choices`` (the last is NONE_OF_THE_ABOVE), the model's
    ``loop.predictions``, the image (item_image), and boxes when ``flow.boxes``."""

    loop: HumanLoop
    flow: FlowDefinition
    choices: tuple[str, ...]
    reviewer: str
    lease_expires_at: datetime
    answers: int  # answers already given by others


@dataclass(frozen=True)
class Detection:
    """One detection, as the detection path passes it to the hook."""

    project: str
    version: str
    image: bytes
    probabilities: Mapping[str, float]  # every label's probability, 0..1 (a detector's: its best box's)
    source_ref: str | None = None  # s3://bucket/key when the image came by reference
    ref: str | None = None  # the request id, kept as the loop's detection_ref
    boxes: tuple[Prediction, ...] = ()  # a detector's answer: the objects it returned, with their boxes


@dataclass(frozen=True)
class LabelAgreement:
    label: str
    model_said: int  # Completed loops whose model answer was this label
    agreed: int  # ... where the human answer was the same
    human_said: int  # Completed loops whose human answer was this label
    rate: float | None  # agreed / model_said


def flow_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:flow-definition/{name}"


def loop_arn(flow_arn_: str, name: str) -> str:
    prefix = flow_arn_.split(":flow-definition/", 1)[0]
    return f"{prefix}:human-loop/{name}"
