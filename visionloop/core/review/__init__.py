"""Human review (what Amazon Augmented AI adds to Custom Labels): low-confidence detections go to people,
and their answers become training data.

Records (core/records/review.py)
    FlowDefinition   one per project (a "flow definition" in A2I's words), named after the project by
                     default, ARN ``arn:aws:sagemaker:<region>:<account>:flow-definition/<name>``. Holds the
                     label choices (``labels``; empty = the project's labels, always followed by
                     NONE_OF_THE_ABOVE), ``boxes`` (detection projects: reviewers draw or adjust boxes),
                     ``instructions``, ``reviewers_per_item`` (default 1), ``time_limit_seconds`` (an item
                     not answered by then expires: the loop Fails with FailureCode "Expired"),
                     ``lease_seconds`` (an abandoned lease frees the item again), the rule of the detection
                     hook (``min_confidence``, ``audit_rate``), ``queue_order`` and ``daily_budget``.
                     FlowSettings is its editable part (put_flow).
    HumanLoop        one image under review. Status as A2I's: InProgress → Completed | Failed |
                     Stopping → Stopped (LoopStatus). ``purpose``: LOW_CONFIDENCE (the hook), AUDIT
                     (sampled: recorded and compared, never added to training) or EXPLICIT (API).
                     One image (content hash) never has two open (InProgress/Stopping) loops in a project.
                     Keeps the model's answer (``predictions``, ``model_answer``, ``margin``) and, once
                     Completed, the human answer (majority), ``disagreement``, ``agrees`` and ``result``.
    ReviewAnswer     one reviewer's answer: ``label`` (None = none of the above) and ``boxes``.
    ReviewItem       what next_item hands a reviewer: the loop, its flow, the choices and the lease.
    Detection        what the detection path passes to the hook.
    LabelAgreement   human vs model, per label (agreement_by_label).

Use cases (``svc`` is core.services.Services; ``now`` defaults to ``svc.clock.now()``), by module
    flows.py    put_flow, get_flow, find_flow, ensure_flow, flow_by_arn, flow_choices (flow_arn is a
                record function: core.records.review)
    loops.py    start_loop (explicit, A2I StartHumanLoop), describe_loop, list_loops, stop_loop,
                delete_loop, get_loop, loop_answers, loop_output, expire_loops, waiting_counts (the
                projects with items waiting); inputs.py reads start_loop's input document
    hook.py     maybe_start_loop(svc, detection) — the rule: the top confidence below the flow's
                ``min_confidence`` (or the one given) starts a LOW_CONFIDENCE loop; otherwise
                ``audit_rate`` samples an AUDIT loop. ReviewRules caches each project's rule for the
                detection path (workflows.review_hook runs it on a background thread), with each
                version's suggested_min_confidence (its review guide's) when the parameters ask for it.
    items.py    the queue: next_item(svc, reviewer, now) LEASES an item to one reviewer (atomically; the
                same reviewer asking again gets the same item back while the lease lasts), submit_answer,
                skip_item (never shown to that reviewer again), release_item (back to the queue),
                item_image (the image bytes), held_loop (a loop only while this reviewer leases it).
                A reviewer is a plain string id (the username).
    answers.py  the results: when an item has its answers the majority wins (a tie asks one more
                reviewer, up to 2 × reviewers_per_item + 1 answers); the loop is Completed, its output
                JSON written in A2I's shape (output.py) to
                ``s3://<flow.output_bucket>/<flow>/YYYY/MM/DD/hh/mm/ss/<loop>/output.json`` (the
                ``buckets`` store); a label on a non-audit loop adds the image to TRAIN
                (EntrySource.HUMAN_REVIEW, ``review_ref`` = the loop's ARN); agreement_by_label.
    checks.py   names and limits: loop names, reviewer ids, MAX_INPUT_CHARS, TOP_GUESSES.
"""

from visionloop.core.review.answers import agreement_by_label, majority
from visionloop.core.review.checks import MAX_INPUT_CHARS, TOP_GUESSES, check_loop_name
from visionloop.core.review.flows import ensure_flow, find_flow, flow_by_arn, flow_choices, get_flow, put_flow
from visionloop.core.review.hook import (
    ReviewRules,
    maybe_start_loop,
    review_purpose,
    suggested_min_confidence,
)
from visionloop.core.review.items import (
    held_loop,
    item_image,
    next_item,
    release_item,
    skip_item,
    submit_answer,
)
from visionloop.core.review.loops import (
    delete_loop,
    describe_loop,
    expire_loops,
    get_loop,
    list_loops,
    loop_answers,
    loop_output,
    start_loop,
    stop_loop,
    waiting_counts,
)
from visionloop.core.review.output import output_document

__all__ = [
    "MAX_INPUT_CHARS",
    "TOP_GUESSES",
    "ReviewRules",
    "agreement_by_label",
    "check_loop_name",
    "delete_loop",
    "describe_loop",
    "ensure_flow",
    "expire_loops",
    "find_flow",
    "flow_by_arn",
    "flow_choices",
    "get_flow",
    "get_loop",
    "held_loop",
    "item_image",
    "list_loops",
    "loop_answers",
    "loop_output",
    "majority",
    "maybe_start_loop",
    "next_item",
    "output_document",
    "put_flow",
    "release_item",
    "review_purpose",
    "skip_item",
    "start_loop",
    "stop_loop",
    "submit_answer",
    "suggested_min_confidence",
    "waiting_counts",
]
