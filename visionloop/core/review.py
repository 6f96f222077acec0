"""Human review (what Amazon Augmented AI adds to Custom Labels): low-confidence detections go to people,
and their answers become training data.

Records
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

Use cases (``svc`` is core.services.Services; ``now`` defaults to ``svc.clock.now()``)
    flows       flow_arn, put_flow, get_flow, find_flow, ensure_flow, flow_by_arn, flow_choices
    loops       start_loop (explicit, A2I StartHumanLoop), describe_loop, list_loops, stop_loop,
                delete_loop, loop_answers, loop_output, expire_loops
    detection   maybe_start_loop(svc, detection) — the rule: the top confidence below the flow's
                ``min_confidence`` (or the one given) starts a LOW_CONFIDENCE loop; otherwise
                ``audit_rate`` samples an AUDIT loop. ReviewHook wraps it for the detection path:
                its call only queues; a background thread does the DB check and the insert.
    queue       next_item(svc, reviewer, now) LEASES an item to one reviewer (atomically; the same
                reviewer asking again gets the same item back while the lease lasts), submit_answer,
                skip_item (never shown to that reviewer again), release_item (back to the queue),
                item_image (the image bytes). A reviewer is a plain string id (the username).
    results     when an item has its answers the majority wins (a tie asks one more reviewer, up to
                2 × reviewers_per_item + 1 answers); the loop is Completed, its output JSON written in
                A2I's shape to ``s3://<flow.output_bucket>/<flow>/YYYY/MM/DD/hh/mm/ss/<loop>/output.json``
                (the ``buckets`` store); a label on a non-audit loop adds the image to TRAIN
                (EntrySource.HUMAN_REVIEW, ``review_ref`` = the loop's ARN); agreement_by_label.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import queue
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from visionloop.core.entities import (
    Box,
    DatasetType,
    EntrySource,
    NewEntry,
    Prediction,
    Project,
    TaskType,
)
from visionloop.core.events import publish
from visionloop.core.images import check_image, content_hash, load_image, store_image
from visionloop.core.keys import check_bucket
from visionloop.core.parameters import get_parameters
from visionloop.core.projects import ensure_dataset, get_project
from visionloop.core.records.events import EventType
from visionloop.core.records.review import (  # re-exported: tests read them here
    DEFAULT_LEASE_SECONDS as DEFAULT_LEASE_SECONDS,
)
from visionloop.core.records.review import (
    DEFAULT_TIME_LIMIT_SECONDS as DEFAULT_TIME_LIMIT_SECONDS,
)
from visionloop.core.records.review import (
    DELETABLE_STATUSES,
    NONE_OF_THE_ABOVE,
    OPEN_STATUSES,
    Detection,
    FlowDefinition,
    FlowSettings,
    HumanLoop,
    LabelAgreement,
    LoopPurpose,
    LoopResult,
    LoopStatus,
    NewLoop,
    QueueOrder,
    ReviewAnswer,
    ReviewItem,
    flow_arn,
)
from visionloop.core.services import Services
from visionloop.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    VisionloopError,
)

log = logging.getLogger("visionloop.review")

MAX_REVIEWERS = 9
MAX_INPUT_CHARS = 3_145_728  # HumanLoopInput.InputContent's limit
MAX_OPEN_LOOPS = 10_000  # open (InProgress/Stopping) loops per flow; more is QuotaExceeded
TOP_GUESSES = 5  # model guesses kept with a loop
_LOOP_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
_FLOW_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
_REVIEWER = re.compile(r"^[^\s\x00-\x1f]{1,128}$")


# --- names and ARNs ------------------------------------------------------------------------------------


def check_loop_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 63 or not _LOOP_NAME.match(name):
        raise InvalidInput(
            f"invalid human loop name {str(name)[:80]!r}: use 1-63 lower-case letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    return name


def check_reviewer(reviewer: str) -> str:
    if not isinstance(reviewer, str) or not _REVIEWER.match(reviewer):
        raise InvalidInput("a reviewer id is 1-128 characters without spaces or control characters")
    return reviewer


def new_loop_name(now: datetime) -> str:
    return f"review-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


# --- flows ---------------------------------------------------------------------------------------------


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


# --- starting loops --------------------------------------------------------------------------------------


def start_loop(
    svc: Services,
    flow: FlowDefinition,
    name: str | None,
    input_content: str | Mapping[str, Any],
    *,
    image: bytes | None = None,
    purpose: LoopPurpose = LoopPurpose.EXPLICIT,
    data_attributes: Sequence[str] = (),
    now: datetime | None = None,
) -> HumanLoop:
    """Start a loop explicitly (A2I StartHumanLoop). ``input_content`` is a JSON object (or its text)
    naming the image: ``taskObject`` or ``source-ref`` (``s3://bucket/key`` in the server's buckets),
    ``aiServiceRequest.image.s3Object {bucket, name}`` or ``.bytes`` (base64), or ``contentHash`` (an image
    the server already stores); ``image`` bytes may be given instead. The model's answer may come as
    ``customLabels`` (or ``aiServiceResponse.customLabels``): ``[{"Name", "Confidence"}]``.
    Same name and same input again returns the same loop; another input under the name is AlreadyExists;
    an image with an open loop in the project is Conflict."""
    now = now or svc.clock.now()
    name = check_loop_name(name) if name is not None else new_loop_name(now)
    text = input_content if isinstance(input_content, str) else json.dumps(input_content)
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidInput(f"the input content may be at most {MAX_INPUT_CHARS:,} characters")
    digest = content_hash(image) if image is not None else ""  # the image is part of the input
    input_hash = hashlib.sha256((text + digest).encode("utf-8", "surrogatepass")).hexdigest()
    existing = svc.repo.find_loop(name)
    if existing is not None:
        return _same_loop(svc, existing, input_hash)
    doc = _input_doc(text)
    _check_quota(svc, flow)
    data, source_ref = (image, "upload") if image is not None else _input_image(svc, doc)
    info = check_image(data, svc.inspector)
    predictions = _input_predictions(doc)
    new = NewLoop(
        name=name,
        flow_id=flow.id,
        purpose=LoopPurpose(purpose),
        expires_at=now + timedelta(seconds=flow.settings.time_limit_seconds),
        image=info,
        source_ref=source_ref,
        input_content=text,
        input_hash=input_hash,
        answers_needed=flow.settings.reviewers_per_item,
        predictions=predictions,
        model_answer=predictions[0].label if predictions else None,
        margin=_margin([p.confidence / 100 for p in predictions]) if predictions else None,
        data_attributes=tuple(data_attributes),
    )
    store_image(svc.store, data, info.content_hash)
    try:
        return _created(svc, svc.repo.create_loop(new, now), now)
    except AlreadyExists:
        found = svc.repo.find_loop(name)
        if found is None:
            raise
        return _same_loop(svc, found, input_hash)


def _check_quota(svc: Services, flow: FlowDefinition) -> None:
    if svc.repo.count_loops(flow.id, OPEN_STATUSES) >= MAX_OPEN_LOOPS:
        raise QuotaExceeded(
            f"flow {flow.name!r} has {MAX_OPEN_LOOPS:,} open human loops, the most it may have; "
            "let reviewers finish some, or stop some"
        )


def _same_loop(svc: Services, loop: HumanLoop, input_hash: str) -> HumanLoop:
    if svc.repo.loop_input_hash(loop.id) != input_hash:
        raise AlreadyExists(f"a human loop named {loop.name!r} exists with a different input")
    return loop


def _input_doc(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidInput("the input content must be a JSON document") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the input content must be a JSON object")
    return doc


def _input_image(svc: Services, doc: Mapping[str, Any]) -> tuple[bytes, str]:
    """The image bytes an input document names, and where they came from."""
    for key in ("taskObject", "source-ref", "sourceRef"):
        ref = doc.get(key)
        if isinstance(ref, str):
            bucket, obj = _s3_uri(ref)
            return svc.buckets.get(bucket, obj), ref
    request = doc.get("aiServiceRequest")
    img = request.get("image") if isinstance(request, dict) else doc.get("image")
    if isinstance(img, dict):
        s3 = img.get("s3Object") or img.get("S3Object")
        if isinstance(s3, dict) and isinstance(s3.get("bucket", s3.get("Bucket")), str):
            bucket = str(s3.get("bucket", s3.get("Bucket")))
            s3_name = s3.get("name", s3.get("Name"))
            if not isinstance(s3_name, str):
                raise InvalidInput("the image's s3Object needs a name")
            return svc.buckets.get(bucket, s3_name), f"s3://{bucket}/{s3_name}"
        raw = img.get("bytes", img.get("Bytes"))
        if isinstance(raw, str):
            try:
                return base64.b64decode(raw, validate=True), "upload"
            except (binascii.Error, ValueError):
                raise InvalidInput("the image bytes are not valid base64") from None
    digest = doc.get("contentHash")
    if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
        try:
            return load_image(svc.store, digest), f"sha256:{digest}"
        except NotFound:
            raise InvalidInput(f"no stored image has the content hash {digest}") from None
    raise InvalidInput(
        "the input content names no image: give taskObject (s3://bucket/key), "
        "aiServiceRequest.image.s3Object, image.bytes or contentHash"
    )


def _s3_uri(ref: str) -> tuple[str, str]:
    if not ref.startswith("s3://") or "/" not in ref[5:]:
        raise InvalidInput(f"{ref[:200]!r} is not an s3://bucket/key reference")
    bucket, _, key = ref[5:].partition("/")
    if not bucket or not key:
        raise InvalidInput(f"{ref[:200]!r} is not an s3://bucket/key reference")
    return bucket, key


def _input_predictions(doc: Mapping[str, Any]) -> tuple[Prediction, ...]:
    response = doc.get("aiServiceResponse")
    labels = response.get("customLabels") if isinstance(response, dict) else doc.get("customLabels")
    if labels is None:
        return ()
    if not isinstance(labels, list):
        raise InvalidInput("customLabels must be a list of {Name, Confidence}")
    out = []
    for item in labels:
        name = item.get("Name", item.get("name")) if isinstance(item, dict) else None
        conf = item.get("Confidence", item.get("confidence")) if isinstance(item, dict) else None
        if not isinstance(name, str) or isinstance(conf, bool) or not isinstance(conf, int | float):
            raise InvalidInput("each of customLabels needs a Name and a numeric Confidence")
        if not 0 <= conf <= 100:
            raise InvalidInput("a Confidence in customLabels must be between 0 and 100")
        out.append(Prediction(name, float(conf)))
    out.sort(key=lambda p: (-p.confidence, p.label))
    return tuple(out[:TOP_GUESSES])


def _margin(probs: Sequence[float]) -> float:
    top = sorted(probs, reverse=True)
    return round(top[0] - (top[1] if len(top) > 1 else 0.0), 6)


def review_purpose(
    flow: FlowDefinition,
    probabilities: Mapping[str, float],
    min_confidence: float | None = None,
    rng: random.Random | None = None,
) -> LoopPurpose | None:
    """The rule alone (no I/O): LOW_CONFIDENCE when the top confidence is below ``min_confidence``
    (default: the flow's), else AUDIT for a sampled ``audit_rate`` share, else None."""
    threshold = flow.settings.min_confidence if min_confidence is None else min_confidence
    top = max(probabilities.values(), default=0.0) * 100
    if threshold is not None and top < threshold:
        return LoopPurpose.LOW_CONFIDENCE
    if flow.settings.audit_rate > 0 and (rng or random).random() < flow.settings.audit_rate:
        return LoopPurpose.AUDIT
    return None


def maybe_start_loop(
    svc: Services,
    detection: Detection,
    *,
    min_confidence: float | None = None,
    flow: FlowDefinition | None = None,
    purpose: LoopPurpose | None = None,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> HumanLoop | None:
    """The detection hook's rule (review_purpose) and the loop it starts. A LOW_CONFIDENCE loop starts
    when the detection's top confidence is below ``min_confidence`` (default: the flow's setting);
    otherwise ``audit_rate`` samples an AUDIT loop. None when the project has no flow or no rule, the
    rule does not fire, or the image already has an open loop. ``flow`` saves a query when the caller
    has it; ``purpose`` is a decision the caller already took with review_purpose."""
    if flow is None:
        project = svc.repo.get_project(detection.project)
        flow = svc.repo.find_flow(project.id)
        if flow is None:
            return None
    probs = dict(detection.probabilities)
    if purpose is None:
        purpose = review_purpose(flow, probs, min_confidence, rng)
    if purpose is None:
        return None
    now = now or svc.clock.now()
    digest = content_hash(detection.image)
    if svc.repo.open_loop_for_image(flow.project_id, digest) is not None:
        return None
    try:
        _check_quota(svc, flow)
    except QuotaExceeded as e:
        log.warning("human review: %s", e.message)
        return None
    info = svc.inspector.inspect(detection.image)
    ranked = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))
    guesses = tuple(Prediction(label, round(100 * p, 3)) for label, p in ranked[:TOP_GUESSES])
    source_ref = detection.source_ref or f"detect://{detection.project}/{detection.version}"
    doc = {
        "taskObject": source_ref if source_ref.startswith("s3://") else None,
        "contentHash": digest,
        "project": detection.project,
        "modelVersion": detection.version,
        "detectedAt": now.astimezone(UTC).isoformat(),
        "customLabels": [{"Name": p.label, "Confidence": p.confidence} for p in guesses],
    }
    text = json.dumps(doc)
    new = NewLoop(
        name=new_loop_name(now),
        flow_id=flow.id,
        purpose=purpose,
        expires_at=now + timedelta(seconds=flow.settings.time_limit_seconds),
        image=info,
        source_ref=source_ref,
        input_content=text,
        input_hash=hashlib.sha256(text.encode()).hexdigest(),
        answers_needed=flow.settings.reviewers_per_item,
        predictions=guesses,
        model_answer=ranked[0][0] if ranked else None,
        margin=_margin([p for _, p in ranked]) if ranked else None,
        model_version=detection.version,
        detection_ref=detection.ref,
    )
    store_image(svc.store, detection.image, digest)
    try:
        return _created(svc, svc.repo.create_loop(new, now), now)
    except Conflict:  # another detection of the same image won the race
        return None


def _created(svc: Services, loop: HumanLoop, now: datetime) -> HumanLoop:
    payload = {
        "loop": loop.name,
        "arn": loop.arn,
        "purpose": loop.purpose.value,
        "model_answer": loop.model_answer,
        "version": loop.model_version,
    }
    _publish(svc, loop, EventType.HUMAN_LOOP_CREATED, payload, now)
    return loop


def _publish(svc: Services, loop: HumanLoop, type: EventType, payload: dict[str, Any], now: datetime) -> None:
    """The loop's event (core.events); a failure to publish is logged and never fails the loop."""
    try:
        publish(svc, svc.repo.get_project_by_id(loop.project_id), type, payload, now=now)
    except Exception:
        log.exception("human review: the %s event of loop %s was not published", type.value, loop.name)


class ReviewHook:
    """What the detection path calls after each detection, without slowing it. The call looks up the
    project's rule in a cache (refreshed every ``ttl`` seconds on the hook's own thread, and at once
    when a parameter changes) and applies it (review_purpose: arithmetic only); only a detection the
    rule picks is queued, with its image, for the background thread that stores the loop. Projects
    without a rule cost a dict lookup; a project not in the cache yet is queued once to be looked up.

    The rule is the flow's, with the project's parameters (core.parameters) on top: with
    ``human_review_enabled`` the threshold is the parameter ``min_confidence`` (else the flow's own);
    with ``human_sampling_enabled`` every ``human_sampling_interval``-th detection of the project (counted
    here, in memory, since the last sampled one) starts an AUDIT loop when the threshold did not already
    pick it. A project whose parameters want loops gets its default flow (``region``, ``account``: its
    ARN)."""

    def __init__(
        self,
        svc: Services,
        ttl: float = 5.0,
        max_pending: int = 256,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
    ) -> None:
        self.svc = svc
        self.ttl = ttl
        self.region = region
        self.account = account
        # project -> (seen at, flow with the parameters' threshold, sample every n-th or None)
        self._flows: dict[str, tuple[float, FlowDefinition | None, int | None]] = {}
        self._counts: dict[str, int] = {}  # project -> detections since the last sampled one
        self._count_lock = threading.Lock()
        self._pending: queue.Queue[tuple[Detection, LoopPurpose | None] | None] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._warned = 0.0
        self.started: list[HumanLoop] = []  # the last loops started (at most 100), for tests and logs
        self._unsubscribe = svc.bus.subscribe(
            lambda event: self.invalidate(event.project), [EventType.PARAMETER_CHANGED]
        )

    def __call__(self, detection: Detection) -> None:
        cached = self._flows.get(detection.project)
        purpose: LoopPurpose | None = None
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            _, flow, every = cached
            if flow is None or (not flow.has_rule and every is None):
                return
            purpose = self._purpose(detection, flow, every)
            if purpose is None:
                return
        self._ensure_thread()
        try:
            self._pending.put_nowait((detection, purpose))
        except queue.Full:
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("human review: too many detections waiting; some are not considered")

    def invalidate(self, project: str | None = None) -> None:
        """Forget what is cached (after a flow changed)."""
        if project is None:
            self._flows.clear()
        else:
            self._flows.pop(project, None)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued detection was considered (tests)."""
        deadline = time.monotonic() + timeout
        while self._pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._unsubscribe()
        with self._lock:
            if self._thread is not None:
                self._pending.put(None)
                self._thread.join(5)
                self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="review-hook", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            work = self._pending.get()
            try:
                if work is None:
                    return
                self._consider(*work)
            except Exception:  # never let one detection stop the hook
                log.exception("human review: a detection could not be considered")
            finally:
                self._pending.task_done()

    def _purpose(self, detection: Detection, flow: FlowDefinition, every: int | None) -> LoopPurpose | None:
        purpose = review_purpose(flow, detection.probabilities)
        if every is None:
            return purpose
        with self._count_lock:
            count = self._counts.get(detection.project, 0) + 1
            sampled = count >= every
            self._counts[detection.project] = 0 if sampled else count
        return purpose or (LoopPurpose.AUDIT if sampled else None)

    def _consider(self, detection: Detection, purpose: LoopPurpose | None) -> None:
        flow, every = self._rule(detection.project)
        if flow is None or (not flow.has_rule and every is None):
            return
        if purpose is None:
            purpose = self._purpose(detection, flow, every)
            if purpose is None:
                return
        loop = maybe_start_loop(self.svc, detection, flow=flow, purpose=purpose)
        if loop is not None:
            log.info("human review: loop %s started (%s)", loop.name, loop.purpose.value)
            self.started = [*self.started[-99:], loop]

    def _rule(self, project_name: str) -> tuple[FlowDefinition | None, int | None]:
        cached = self._flows.get(project_name)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1], cached[2]
        try:
            project = self.svc.repo.get_project(project_name)
        except NotFound:
            flow, every = None, None
        else:
            params = get_parameters(self.svc, project)
            flow = self.svc.repo.find_flow(project.id)
            if flow is None and (params.human_review_enabled or params.human_sampling_enabled):
                flow = ensure_flow(self.svc, project.name, region=self.region, account=self.account)
            if flow is not None and params.human_review_enabled:
                settings = replace(flow.settings, min_confidence=params.min_confidence)
                flow = replace(flow, settings=settings)
            every = params.human_sampling_interval if params.human_sampling_enabled else None
        self._flows[project_name] = (time.monotonic(), flow, every)
        return flow, every


# --- loops -----------------------------------------------------------------------------------------------


def expire_loops(svc: Services, now: datetime | None = None) -> int:
    """InProgress loops past their time limit Fail ("Expired"); Stopping loops whose leases are all gone
    are Stopped. Returns how many loops changed."""
    return svc.repo.expire_loops(now or svc.clock.now())


def describe_loop(svc: Services, name: str, now: datetime | None = None) -> HumanLoop:
    expire_loops(svc, now)
    loop = svc.repo.find_loop(name)
    if loop is None:
        raise NotFound(f"human loop {name[:80]!r} does not exist")
    return loop


def list_loops(
    svc: Services,
    flow: FlowDefinition,
    *,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    ascending: bool = False,
    status: LoopStatus | None = None,
    offset: int = 0,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[HumanLoop]:
    """The flow's loops by creation time (newest first unless ``ascending``)."""
    expire_loops(svc, now)
    return svc.repo.list_loops(
        flow.id,
        created_after=created_after,
        created_before=created_before,
        ascending=ascending,
        status=status,
        offset=offset,
        limit=limit,
    )


def stop_loop(svc: Services, name: str, now: datetime | None = None) -> HumanLoop:
    """StopHumanLoop: InProgress → Stopping while a reviewer holds a lease (Stopped once it ends),
    else Stopped. Stopping or Stopped again is a no-op; a Completed or Failed loop is Conflict."""
    now = now or svc.clock.now()
    loop = describe_loop(svc, name, now)
    if loop.status in (LoopStatus.STOPPING, LoopStatus.STOPPED):
        return loop
    held = any(lease.expires_at > now for lease in svc.repo.list_leases(loop.id))
    target = LoopStatus.STOPPING if held else LoopStatus.STOPPED
    done = svc.repo.transition_loop(loop.id, [LoopStatus.IN_PROGRESS], status=target)
    if done is None:
        current = describe_loop(svc, name, now)
        if current.status in (LoopStatus.STOPPING, LoopStatus.STOPPED):
            return current
        raise Conflict(f"human loop {name!r} is {current.status.value}; it cannot be stopped")
    return done


def delete_loop(svc: Services, name: str, now: datetime | None = None) -> HumanLoop:
    """DeleteHumanLoop: only a Stopped, Completed or Failed loop (an open one is Conflict). Its output
    file and any training entry it added stay."""
    loop = describe_loop(svc, name, now)
    if loop.status not in DELETABLE_STATUSES:
        raise Conflict(f"human loop {name!r} is {loop.status.value}; stop it before deleting it")
    if not svc.repo.delete_loop(loop.id, DELETABLE_STATUSES):
        raise Conflict(f"human loop {name!r} changed meanwhile; try again")
    return loop


def loop_answers(svc: Services, loop: HumanLoop | str) -> list[ReviewAnswer]:
    return svc.repo.list_answers(_loop(svc, loop).id)


def loop_output(svc: Services, loop: HumanLoop | str) -> dict[str, Any] | None:
    """The loop's output document (A2I's shape) once Completed, else None."""
    found = _loop(svc, loop)
    if found.output_uri is None:
        return None
    bucket, key = _s3_uri(found.output_uri)
    doc: dict[str, Any] = json.loads(svc.buckets.get(bucket, key))
    return doc


def item_image(svc: Services, loop: HumanLoop | ReviewItem) -> bytes:
    """The bytes of the image under review."""
    found = loop.loop if isinstance(loop, ReviewItem) else loop
    return load_image(svc.store, found.image.content_hash)


def _loop(svc: Services, loop: HumanLoop | str) -> HumanLoop:
    name = loop.name if isinstance(loop, HumanLoop) else loop
    found = svc.repo.find_loop(name)
    if found is None:
        raise NotFound(f"human loop {str(name)[:80]!r} does not exist")
    return found


# --- the reviewer queue ----------------------------------------------------------------------------------


def next_item(
    svc: Services, reviewer: str, now: datetime | None = None, *, project: str | None = None
) -> ReviewItem | None:
    """Lease the next item to ``reviewer`` (None: nothing to do, or every flow's daily budget is spent).
    A reviewer holding a live lease gets that item again. Items are ordered by their flow's
    ``queue_order``; one a reviewer answered or skipped never comes back to them; an item needing n
    reviewers is leased to at most n - answers reviewers at once. Atomic: two reviewers never hold the
    same slot."""
    reviewer = check_reviewer(reviewer)
    now = now or svc.clock.now()
    project_id = get_project(svc, project).id if project is not None else None
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    leased = svc.repo.lease_next_loop(reviewer, now, day_start, project_id)
    if leased is None:
        return None
    loop, lease = leased
    flow = svc.repo.get_flow_by_id(loop.flow_id)
    answers = len(svc.repo.list_answers(loop.id))
    return ReviewItem(loop, flow, flow_choices(svc, flow), reviewer, lease.expires_at, answers)


def skip_item(svc: Services, loop: HumanLoop | str, reviewer: str, now: datetime | None = None) -> None:
    """Give the item back; it is never offered to this reviewer again."""
    found = _loop(svc, loop)
    svc.repo.release_lease(found.id, check_reviewer(reviewer), skip=True)
    expire_loops(svc, now)


def release_item(svc: Services, loop: HumanLoop | str, reviewer: str, now: datetime | None = None) -> None:
    """Give the item back to the queue (this reviewer may get it again)."""
    found = _loop(svc, loop)
    svc.repo.release_lease(found.id, check_reviewer(reviewer), skip=False)
    expire_loops(svc, now)


def submit_answer(
    svc: Services,
    loop: HumanLoop | str,
    reviewer: str,
    label_or_none: str | None,
    boxes: Sequence[Box] | None = None,
    now: datetime | None = None,
) -> HumanLoop:
    """Record ``reviewer``'s answer to a loop they lease: a label among the flow's choices, or None /
    NONE_OF_THE_ABOVE; ``boxes`` (ratios, labelled with choices) only for flows with boxes. When the
    loop has its answers it is Completed (see the module docstring). Conflict when the reviewer holds
    no lease on it, the lease expired and another reviewer took the item, or the loop is no longer
    InProgress. Returns the loop as it is now."""
    reviewer = check_reviewer(reviewer)
    now = now or svc.clock.now()
    found = _loop(svc, loop)
    if found.status is LoopStatus.STOPPING:  # the answer comes too late: the loop can now be Stopped
        svc.repo.release_lease(found.id, reviewer, skip=False)
        expire_loops(svc, now)
        raise Conflict(
            f"human loop {found.name!r} was stopped; the answer is not recorded", status="Stopping"
        )
    flow = svc.repo.get_flow_by_id(found.flow_id)
    choices = flow_choices(svc, flow)
    label = None if label_or_none in (None, NONE_OF_THE_ABOVE) else label_or_none
    if label is not None and label not in choices:
        raise InvalidInput(f"{str(label)[:80]!r} is not one of the choices: {', '.join(choices)}")
    checked = _check_boxes(flow, choices, boxes or ())
    if checked and label is None:
        raise InvalidInput("an answer of none of the above has no boxes")
    answers = svc.repo.record_answer(found.id, reviewer, label, checked, now)
    if len(answers) < found.answers_needed:
        return svc.repo.get_loop_by_id(found.id)
    return _finish(svc, flow, found, answers, now)


def _check_boxes(flow: FlowDefinition, choices: Sequence[str], boxes: Sequence[Box]) -> tuple[Box, ...]:
    if boxes and not flow.boxes:
        raise InvalidInput("this project's reviewers choose labels; boxes are for object-detection projects")
    for b in boxes:
        if b.label not in choices or b.label == NONE_OF_THE_ABOVE:
            raise InvalidInput(f"box label {b.label[:80]!r} is not one of the choices")
        values = (b.left, b.top, b.width, b.height)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise InvalidInput("box coordinates must be numbers")
        if b.left < 0 or b.top < 0 or b.width <= 0 or b.height <= 0:
            raise InvalidInput("a box needs left, top ≥ 0 and a positive width and height (ratios)")
        if b.left + b.width > 1.0001 or b.top + b.height > 1.0001:
            raise InvalidInput("a box must lie inside the image (ratios of its size, at most 1)")
    return tuple(boxes)


def majority(answers: Sequence[ReviewAnswer]) -> tuple[str | None, bool]:
    """(the winning answer, or None on a tie; whether the answers disagreed)."""
    counts = Counter(a.answer for a in answers).most_common()
    if not counts:
        return None, False
    disagreement = len(counts) > 1
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, disagreement
    return counts[0][0], disagreement


def _finish(
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
    output_uri = _write_output(svc, flow, done, answers)
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
    _publish(svc, finished, EventType.HUMAN_LOOP_COMPLETED, payload, now)
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


def _write_output(
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


# --- results -----------------------------------------------------------------------------------------------


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


__all__ = [
    "NONE_OF_THE_ABOVE",
    "Detection",
    "FlowDefinition",
    "FlowSettings",
    "HumanLoop",
    "LabelAgreement",
    "LoopPurpose",
    "LoopResult",
    "LoopStatus",
    "QueueOrder",
    "ReviewHook",
    "ReviewItem",
    "agreement_by_label",
    "delete_loop",
    "describe_loop",
    "ensure_flow",
    "expire_loops",
    "find_flow",
    "flow_arn",
    "flow_by_arn",
    "flow_choices",
    "get_flow",
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
]
