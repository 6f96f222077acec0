"""The output document of a Completed loop, in A2I's shape, and where it is written
(``s3://<flow.output_bucket>/<flow>/YYYY/MM/DD/hh/mm/ss/<loop>/output.json``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from visionloop.core.records.review import FlowDefinition, HumanLoop, ReviewAnswer
from visionloop.core.services import Services
from visionloop.errors import VisionloopError

log = logging.getLogger("visionloop.review")


def output_document(flow: FlowDefinition, loop: HumanLoop, answers: Sequence[ReviewAnswer]) -> dict[str, Any]:
    """The loop's output in A2I's shape (camelCase keys, ISO-8601 UTC times)."""

    def ts(when: datetime) -> str:
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    try:
        content: Any = json.loads(loop.input_content)
    except ValueError:
        content = loop.input_content
    human = []
    for a in answers:
        answer: dict[str, Any] = {"label": a.answer}
        if a.boxes:
            answer["boundingBoxes"] = [
                {"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height}
                for b in a.boxes
            ]
        human.append(
            {
                "answerContent": answer,
                "acceptanceTime": ts(a.accepted_at),
                "submissionTime": ts(a.submitted_at),
                "timeSpentInSeconds": round((a.submitted_at - a.accepted_at).total_seconds(), 3),
                "workerId": a.reviewer,
                "workerMetadata": {
                    "identityData": {
                        "identityProviderType": "visionloop",
                        "issuer": "visionloop",
                        "sub": a.reviewer,
                    }
                },
            }
        )
    return {
        "flowDefinitionArn": flow.arn,
        "humanLoopName": loop.name,
        "humanAnswers": human,
        "inputContent": content,
    }


def output_key(flow: FlowDefinition, loop: HumanLoop) -> str:
    """``<flow>/YYYY/MM/DD/hh/mm/ss/<loop>/output.json`` (the loop's creation time, UTC)."""
    return f"{flow.name}/{loop.created_at.astimezone(UTC):%Y/%m/%d/%H/%M/%S}/{loop.name}/output.json"


def write_output(
    svc: Services, flow: FlowDefinition, loop: HumanLoop, answers: Sequence[ReviewAnswer]
) -> str | None:
    key = output_key(flow, loop)
    body = json.dumps(output_document(flow, loop, answers), indent=1).encode()
    try:
        svc.buckets.put(flow.settings.output_bucket, key, body)
    except VisionloopError as e:  # the loop's answers are kept in the database all the same
        log.error("human loop %s: its output could not be written: %s", loop.name, e)
        return None
    return f"s3://{flow.settings.output_bucket}/{key}"
