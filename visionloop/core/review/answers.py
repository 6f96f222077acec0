"""What the answers decide: the majority (a tie asks one more reviewer), the Completed loop and what it
adds to TRAIN; human vs model per label (agreement_by_label)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from visionloop.core.entities import Box, DatasetType, EntrySource, NewEntry, Project, TaskType
from visionloop.core.projects import ensure_dataset, get_project
from visionloop.core.records.events import EventType
from visionloop.core.records.review import (
    NONE_OF_THE_ABOVE,
    FlowDefinition,
    HumanLoop,
    LabelAgreement,
    LoopPurpose,
    LoopResult,
    LoopStatus,
    ReviewAnswer,
)
from visionloop.core.review.loops import publish_loop_event
from visionloop.core.review.output import write_output
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists


def majority(answers: Sequence[ReviewAnswer]) -> tuple[str | None, bool]:
    """(the winning answer, or None on a tie; whether the answers disagreed)."""
    counts = Counter(a.answer for a in answers).most_common()
    if not counts:
        return None, False
    disagreement = len(counts) > 1
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, disagreement
    return counts[0][0], disagreement


def finish_loop(
    svc: Services, flow: FlowDefinition, loop: HumanLoop, answers: Sequence[ReviewAnswer], now: datetime
) -> HumanLoop:
    winner, disagreement = majority(answers)
    cap = 2 * flow.settings.reviewers_per_item + 1
    if winner is None and len(answers) < cap:  # a tie: ask one more reviewer
        more = svc.repo.transition_loop(
            loop.id, [LoopStatus.IN_PROGRESS], answers_needed=len(answers) + 1, disagreement=True
        )
        return more or svc.repo.get_loop_by_id(loop.id)
    model = loop.model_answer
    agrees = None if winner is None else (winner == model or (winner == NONE_OF_THE_ABOVE and model is None))
    done = svc.repo.transition_loop(
        loop.id,
        [LoopStatus.IN_PROGRESS],
        status=LoopStatus.COMPLETED,
        completed_at=now,
        human_answer=winner,
        agrees=agrees,
        disagreement=disagreement,
    )
    if done is None:  # finished by a concurrent answer, or stopped meanwhile
        return svc.repo.get_loop_by_id(loop.id)
    result, entry_id = _results_flow_back(svc, flow, done, winner, answers, now)
    output_uri = write_output(svc, flow, done, answers)
    finished = svc.repo.update_loop(done.id, result=result, entry_id=entry_id, output_uri=output_uri)
    payload = {
        "loop": finished.name,
        "arn": finished.arn,
        "purpose": finished.purpose.value,
        "model_answer": finished.model_answer,
        "human_answer": finished.human_answer,
        "agrees": finished.agrees,
        "result": None if finished.result is None else finished.result.value,
        "version": finished.model_version,
    }
    publish_loop_event(svc, finished, EventType.HUMAN_LOOP_COMPLETED, payload, now)
    return finished


def _results_flow_back(
    svc: Services,
    flow: FlowDefinition,
    loop: HumanLoop,
    winner: str | None,
    answers: Sequence[ReviewAnswer],
    now: datetime,
) -> tuple[LoopResult, int | None]:
    if winner is None:
        return LoopResult.NO_MAJORITY, None
    if winner == NONE_OF_THE_ABOVE:
        return LoopResult.NONE_OF_THE_ABOVE, None
    if loop.purpose is LoopPurpose.AUDIT:
        return LoopResult.AUDIT, None
    project = svc.repo.get_project_by_id(loop.project_id)
    test = svc.repo.find_dataset(project.id, DatasetType.TEST)
    if test is not None and loop.image.content_hash in svc.repo.entry_hashes(test.id):
        return LoopResult.DUPLICATE, None
    train = ensure_dataset(svc, project, DatasetType.TRAIN)
    boxes = next((a.boxes for a in answers if a.answer == winner and a.boxes), ())
    entry = NewEntry(
        image=loop.image,
        source_ref=loop.source_ref,
        labels=_entry_labels(project, winner, boxes),
        boxes=boxes,
        source=EntrySource.HUMAN_REVIEW,
        review_ref=loop.arn,
    )
    try:
        [entry_id] = svc.repo.add_entries(train.id, [entry], now)
    except AlreadyExists:
        return LoopResult.DUPLICATE, None
    svc.repo.add_labels(project.id, [winner])
    return LoopResult.ADDED, entry_id


def _entry_labels(project: Project, winner: str, boxes: Sequence[Box]) -> tuple[str, ...]:
    return () if project.task is TaskType.DETECTION and boxes else (winner,)


def agreement_by_label(svc: Services, project_name: str) -> list[LabelAgreement]:
    """Human vs model over the project's Completed loops (every purpose), per label: how often the
    human answer matched when the model said that label."""
    project = get_project(svc, project_name)
    model_said: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    human_said: Counter[str] = Counter()
    for model, human in svc.repo.loop_answers_pairs(project.id):
        model_key = model or NONE_OF_THE_ABOVE
        model_said[model_key] += 1
        human_said[human] += 1
        if human == model_key:
            agreed[model_key] += 1
    labels = sorted(set(model_said) | set(human_said), key=lambda s: (s == NONE_OF_THE_ABOVE, s))
    return [
        LabelAgreement(
            label=label,
            model_said=model_said[label],
            agreed=agreed[label],
            human_said=human_said[label],
            rate=round(agreed[label] / model_said[label], 4) if model_said[label] else None,
        )
        for label in labels
    ]
