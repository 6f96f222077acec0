"""The champion/challenger gate: a newly trained version (the challenger) is compared with the version
serving the project (the champion) on the same frozen test set, label by label.

The test set is the challenger's TEST snapshot (frozen when it was trained) without the images the
champion was trained on, so that neither model has seen an image it is judged on (when that leaves no
image, the whole snapshot is used and the result says so). Each model is loaded as it was evaluated: a
served model that has since learned its own TEST images (an automatic split's, see
core.ports.EVALUATED_PREFIX) is compared as it was before. Both models predict every image with their
own assumed thresholds (Rekognition's rule: a label is predicted when its probability reaches its
threshold); per label, F1 = 2·TP / (2·TP + FP + FN) over the images. The challenger fails the gate when
any label with test images has an F1 lower than the champion's by more than ``max_drop``
(the ``max_f1_drop`` parameter). A label the champion does not know counts as F1 0 for it. Detectors
are compared the same way on the labels of the boxes they return (an image "has" a label when the model
returns a box of it), not on the boxes' positions.

The comparison runs as a job of kind ``compare`` (params ``champion_id``, ``challenger_id``,
``max_drop``) in a worker process, which has the engine and the CPU to spare; its result is the job's
``result``: ``{"passed", "max_drop", "images", "excluded", "note", "worst", "labels": [{"label",
"support", "champion_f1", "challenger_f1", "drop"}], "champion_macro_f1", "challenger_macro_f1"}``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from visionloop.core.entities import Job, ModelVersion
from visionloop.core.images import load_image
from visionloop.core.jobs import fail_job, finish_job
from visionloop.core.ports import TrainingEngine
from visionloop.core.scoring import f1_by_label, model_outputs, output_predictions
from visionloop.core.services import Services
from visionloop.core.training import SNAPSHOTS_BUCKET, as_evaluated, load_artifact
from visionloop.errors import InvalidInput, VisionloopError

log = logging.getLogger("visionloop.gate")

BATCH = 16  # images predicted at once
EPSILON = 1e-9  # a drop equal to the margin passes


@dataclass(frozen=True)
class LabelComparison:
    label: str
    support: int  # test images that carry the label
    champion_f1: float
    challenger_f1: float

    @property
    def drop(self) -> float:
        return self.champion_f1 - self.challenger_f1

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "support": self.support,
            "champion_f1": round(self.champion_f1, 4),
            "challenger_f1": round(self.challenger_f1, 4),
            "drop": round(self.drop, 4),
        }


def compare(
    truth: Sequence[Collection[str]],
    champion: Sequence[Collection[str]],
    challenger: Sequence[Collection[str]],
    max_drop: float,
) -> dict[str, Any]:
    """The gate's verdict from each image's true labels and the two models' predicted labels."""
    support = Counter(label for t in truth for label in set(t))
    labels = sorted(support)
    old = f1_by_label(truth, champion, labels)
    new = f1_by_label(truth, challenger, labels)
    rows = [LabelComparison(label, support[label], old[label], new[label]) for label in labels]
    worst = max(rows, key=lambda r: r.drop, default=None)
    passed = all(r.drop <= max_drop + EPSILON for r in rows)
    return {
        "passed": passed,
        "max_drop": max_drop,
        "images": len(truth),
        "labels": [r.to_dict() for r in rows],
        "worst": None if worst is None else worst.to_dict(),
        "champion_macro_f1": _mean(old.values()),
        "challenger_macro_f1": _mean(new.values()),
    }


def _mean(values: Collection[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def rejection_reason(result: Mapping[str, Any], champion: str) -> str:
    worst = result.get("worst") or {}
    return (
        f"the F1 of label '{worst.get('label')}' fell from {worst.get('champion_f1', 0):.3f} "
        f"({champion}) to {worst.get('challenger_f1', 0):.3f}, more than max_f1_drop "
        f"{result.get('max_drop')}, on {result.get('images')} test images"
    )


# --- the compare job -----------------------------------------------------------------------------------


def queue_compare(svc: Services, champion: ModelVersion, challenger: ModelVersion, max_drop: float) -> Job:
    params: dict[str, object] = {
        "champion_id": champion.id,
        "challenger_id": challenger.id,
        "max_drop": max_drop,
    }
    return svc.repo.create_job("compare", challenger.project_id, challenger.id, svc.clock.now(), params)


def run_compare_job(svc: Services, engine: TrainingEngine, job: Job) -> Job:
    """Compare the job's champion and challenger (see the module docstring); the job ends SUCCEEDED with
    the result or FAILED with a readable message."""
    try:
        params = job.params or {}
        champion = svc.repo.get_version_by_id(_int(params.get("champion_id")))
        challenger = svc.repo.get_version_by_id(_int(params.get("challenger_id")))
        max_drop = float(params.get("max_drop", 0.0))  # type: ignore[arg-type]
        result = compare_versions(svc, engine, champion, challenger, max_drop)
        return finish_job(svc, job, result)
    except Exception as e:  # the job must end, whatever happened
        message = e.message if isinstance(e, VisionloopError) else f"internal error: {type(e).__name__}: {e}"
        if not isinstance(e, VisionloopError):
            log.exception("compare job %d failed", job.id)
        return fail_job(svc, job, message)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"a compare job names versions by id, not {value!r}")
    return value


def _labels(row: dict[str, Any]) -> set[str]:
    """A snapshot row's labels: its image-level labels and the labels of its boxes (detection projects
    are compared on which labels each image has a box of)."""
    return set(row["labels"]) | {b["label"] for b in row.get("boxes", ())}


def compare_versions(
    svc: Services, engine: TrainingEngine, champion: ModelVersion, challenger: ModelVersion, max_drop: float
) -> dict[str, Any]:
    test = [r for r in _snapshot(svc, challenger)["test"] if _labels(r)]
    seen = {r["hash"] for r in _snapshot(svc, champion)["train"]}
    unseen = [r for r in test if r["hash"] not in seen]
    rows = unseen or test
    if not rows:
        raise InvalidInput(f"version {challenger.name}'s test set has no labelled image to compare on")
    note = (
        None
        if unseen
        else f"every test image was a training image of {champion.name}: compared on all of them"
    )
    truth = [_labels(r) for r in rows]
    old = _predict(svc, engine, champion, [r["hash"] for r in rows])
    new = _predict(svc, engine, challenger, [r["hash"] for r in rows])
    result = compare(truth, old, new, max_drop)
    result.update(
        champion=champion.name,
        challenger=challenger.name,
        excluded=len(test) - len(unseen) if unseen else 0,
        note=note,
    )
    return result


def _snapshot(svc: Services, version: ModelVersion) -> dict[str, list[dict[str, Any]]]:
    doc: dict[str, list[dict[str, Any]]] = json.loads(
        svc.store.get(SNAPSHOTS_BUCKET, f"{version.snapshot_id}.json")
    )
    return doc


def _predict(
    svc: Services, engine: TrainingEngine, version: ModelVersion, hashes: Sequence[str]
) -> list[set[str]]:
    # as evaluated: a served head that has learned its TEST images too would be judged on images it saw
    model = engine.load(as_evaluated(load_artifact(svc, version)))
    out: list[set[str]] = []
    for start in range(0, len(hashes), BATCH):
        images = [load_image(svc.store, h) for h in hashes[start : start + BATCH]]
        for output in model_outputs(model, images):
            out.append({p.label for p in output_predictions(output, version.thresholds)})
    return out


__all__ = [
    "LabelComparison",
    "compare",
    "compare_versions",
    "queue_compare",
    "rejection_reason",
    "run_compare_job",
]
