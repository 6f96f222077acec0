"""DetectModerationLabels' HumanLoopConfig: the image goes to people when the flow's activation conditions
hold for the answer, as Rekognition does with Amazon A2I.

``review_request`` checks the member and finds the flow before any work (a bad name is
InvalidParameterException; an unknown flow ResourceNotFoundException; a flow that is not for
DetectModerationLabels InvalidParameterException). ``activate`` runs with the analysis, on the analysis
thread: it evaluates the conditions (sagemaker/conditions.py) and, when they hold, starts an A2I human loop
on the flow with the image and the model's labels (core.review.start_loop); the loop is then seen through
the A2I runtime API and waits in the reviewers' queue. Its answer is HumanLoopActivationOutput.

As with StartHumanLoop, the same loop name with the same image and answer again is the same loop, and
with another input InvalidParameterException. An image that already waits in the flow's queue under
another loop is not queued twice: the answer names that loop. Too many open loops on the flow:
HumanLoopQuotaExceededException."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from visionloop.aws.exceptions import (
    HumanLoopQuotaExceededException,
    InvalidParameterException,
    ResourceNotFoundException,
)
from visionloop.aws.params import Params
from visionloop.core import review
from visionloop.core.images import content_hash
from visionloop.core.keys import ObjectRef
from visionloop.core.records.analysis import ModerationLabel
from visionloop.core.records.review import FlowDefinition
from visionloop.core.review import definitions
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound, QuotaExceeded
from visionloop.sagemaker import conditions
from visionloop.sagemaker.requests import MODERATION_SOURCE

Json = dict[str, Any]
LOOP_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
CONTENT_CLASSIFIERS = ("FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent")
ACTIVATED = "ConditionsEvaluation"  # HumanLoopActivationReasons when the conditions held


@dataclass(frozen=True)
class ReviewRequest:
    """A checked HumanLoopConfig: the loop's name, the flow and its parsed activation conditions."""

    name: str
    flow: FlowDefinition
    conditions: Json
    data_attributes: tuple[str, ...]


def review_request(svc: Services, p: Params, region: str, account: str) -> ReviewRequest | None:
    config = p.struct("HumanLoopConfig")
    if config is None:
        return None
    name = config.string("HumanLoopName", required=True, min_len=1, max_len=63, pattern=LOOP_NAME)
    arn = config.string("FlowDefinitionArn", required=True, min_len=1, max_len=256)
    assert name is not None and arn is not None
    attributes = config.struct("DataAttributes")
    classifiers = (attributes.strings("ContentClassifiers", max_items=256) if attributes else None) or []
    for c in classifiers:
        if c not in CONTENT_CLASSIFIERS:
            raise InvalidParameterException(
                f"Unknown ContentClassifier {c[:60]!r}; use {' or '.join(CONTENT_CLASSIFIERS)}."
            )
    try:
        flow = review.flow_by_arn(svc, arn, region=region, account=account, create=False)
    except InvalidInput as e:
        raise InvalidParameterException(e.message) from None
    except NotFound as e:
        raise ResourceNotFoundException(e.message) from None
    definition = definitions.kept_definition(svc, flow) if flow is not None else None
    source = ((definition or {}).get("HumanLoopRequestSource") or {}).get("AwsManagedHumanLoopRequestSource")
    if flow is None or definition is None or source != MODERATION_SOURCE:
        raise InvalidParameterException(
            f"The flow definition {arn[:200]} is not for DetectModerationLabels: create one with "
            f"HumanLoopRequestSource {MODERATION_SOURCE} and activation conditions (CreateFlowDefinition)."
        )
    activation = definition["HumanLoopActivationConfig"]["HumanLoopActivationConditionsConfig"]
    doc = conditions.parse(activation["HumanLoopActivationConditions"])
    return ReviewRequest(name, flow, doc, tuple(dict.fromkeys(classifiers)))


def activate(
    svc: Services,
    req: ReviewRequest,
    image: bytes,
    source: bytes | ObjectRef,
    labels: tuple[ModerationLabel, ...],
    version: str,
) -> Json:
    """Evaluate the flow's conditions on ``labels``; start the loop when they hold. The answer's
    HumanLoopActivationOutput."""
    digest = content_hash(image)
    found = conditions.evaluate(
        req.conditions, [(m.name, m.confidence) for m in labels], f"{req.flow.name}|{digest}"
    )
    out: Json = {"HumanLoopActivationConditionsEvaluationResults": json.dumps(found.results)}
    if not found.activated:
        return out
    choices = set(req.flow.settings.labels)
    guesses = tuple(m for m in labels if m.name in choices) or labels  # the model's answer among the choices
    content = {"flowDefinitionArn": req.flow.arn, **_input(source, labels, guesses, version, found.results)}
    try:
        loop = review.start_loop(
            svc, req.flow, req.name, content, image=image, data_attributes=req.data_attributes
        )
    except QuotaExceeded as e:
        raise HumanLoopQuotaExceededException(e.message) from None
    except AlreadyExists as e:
        raise InvalidParameterException(e.message) from None
    except Conflict:  # the image already waits in the flow's queue
        waiting = definitions.open_loop_for(svc, req.flow, digest)
        if waiting is None:
            raise
        loop = waiting
    return {"HumanLoopArn": loop.arn, "HumanLoopActivationReasons": [ACTIVATED], **out}


def _input(
    source: bytes | ObjectRef,
    labels: tuple[ModerationLabel, ...],
    guesses: tuple[ModerationLabel, ...],
    version: str,
    results: Json,
) -> Json:
    """The loop's input, in the shape of A2I's Rekognition input (the image's bytes are kept apart);
    ``customLabels`` beside it gives reviewers the model's ``guesses``."""
    request: Json = {"image": {"bytes": "(given with the request)"}}
    if isinstance(source, ObjectRef):
        request = {"image": {"s3Object": {"bucket": source.bucket, "name": source.key}}}
    return {
        "aiServiceRequest": request,
        "aiServiceResponse": {
            "moderationLabels": [
                {"confidence": m.confidence, "name": m.name, "parentName": m.parent_name} for m in labels
            ],
            "moderationModelVersion": version,
            "customLabels": [{"Name": m.name, "Confidence": m.confidence} for m in guesses],
        },
        "humanLoopActivationConditionsEvaluationResults": results,
    }
