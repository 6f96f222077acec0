"""Composition root: the one place that picks adapters for the core's ports and builds what a process
runs. build_services for every process; build_server for the server (its serving with the review hook
and the detection log, the AWS backend, the pretrained analysis, the accounts, and every background
component in one BackgroundGroup); build_engine for the worker and the CLI's foreground training."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionloop.core.deployments import ROLLBACK
from visionloop.core.ports import SceneClusterer, TrainingEngine
from visionloop.core.retraining import TRAINING_CHECK
from visionloop.core.runkinds import RunKind, register_kind
from visionloop.core.services import Services
from visionloop.imaging import PillowInspector
from visionloop.settings import Settings
from visionloop.storage import open_object_store, open_repository

if TYPE_CHECKING:
    from collections.abc import Callable

    from visionloop.aws.backend import RekognitionBackend
    from visionloop.core.accounts import Accounts
    from visionloop.core.analyzing import Analysis
    from visionloop.core.inbox import InboxSettings
    from visionloop.core.serving import Serving
    from visionloop.storage.s3 import S3Options
    from visionloop.workflows.background import BackgroundGroup
    from visionloop.workflows.detection_log import DetectionLog
    from visionloop.workflows.inbox import InboxWatcher
    from visionloop.workflows.inference import EngineFactory
    from visionloop.workflows.notifications import Notifier
    from visionloop.workflows.review_hook import ReviewHook
    from visionloop.workflows.supervisor import WorkerPool
    from visionloop.workflows.worker import Worker


#: The kinds of workflow run this product executes (core.runs runs any kind registered in core.runkinds).
RUN_KINDS: tuple[RunKind, ...] = (TRAINING_CHECK, ROLLBACK)


def register_run_kinds() -> None:
    for kind in RUN_KINDS:
        register_kind(kind)


def build_services(settings: Settings) -> Services:
    register_run_kinds()
    from visionloop.storage.policies import policy_store

    settings.data_path.mkdir(parents=True, exist_ok=True)
    repo = open_repository(settings.resolved_database_url)
    return Services(
        repo=repo,
        store=open_object_store(settings.resolved_store_url, _s3_options(settings)),
        buckets=open_object_store(settings.resolved_buckets_url, _s3_options(settings)),
        inspector=PillowInspector(),
        scenes=_scenes(settings),
        policies=policy_store(repo),
    )


def _s3_options(settings: Settings) -> S3Options:
    """The S3 endpoint, region and credentials of s3:// store and bucket URLs (unused otherwise)."""
    from visionloop.storage.s3 import S3Options

    return S3Options(
        settings.s3_endpoint_url, settings.s3_region, settings.s3_access_key_id, settings.s3_secret_access_key
    )


def _scenes(settings: Settings) -> SceneClusterer | None:
    """The scene clusterer of automatic splits, when enabled and the machine-learning extra is here."""
    if not settings.split_by_scene or importlib.util.find_spec("onnxruntime") is None:
        return None
    from visionloop.engines.scenes import EmbeddingScenes

    return EmbeddingScenes(settings.resolved_cache_dir)


def build_accounts(services: Services, settings: Settings) -> Accounts:
    """Reviewer accounts and sessions, in the repository's database, with argon2 password hashes."""
    from datetime import timedelta

    from visionloop.core.accounts import Accounts, SessionPolicy
    from visionloop.passwords import Argon2Hasher
    from visionloop.storage.accounts import SqlAccountStore
    from visionloop.storage.sql import SqlRepository

    if not isinstance(services.repo, SqlRepository):
        raise TypeError("reviewer accounts are kept in the SQL repository's database")
    policy = SessionPolicy(
        lifetime=timedelta(hours=settings.session_hours),
        idle=timedelta(minutes=settings.session_idle_minutes),
    )
    return Accounts(SqlAccountStore(services.repo.engine), Argon2Hasher(), services.clock, policy)


def build_engine(settings: Settings, num_threads: int | None = None) -> TrainingEngine:
    """The machine-learning engine (imported lazily: serving without training needs none of it): the
    classification engine, and the detection engine for detection projects (built on first use, on one
    torch thread: more ran ~10x slower on a loaded 2-core machine)."""
    from visionloop.engines.classification import ClassificationEngine
    from visionloop.engines.tasks import TaskEngine

    return TaskEngine(
        ClassificationEngine(cache_dir=settings.resolved_cache_dir, num_threads=num_threads),
        functools.partial(_detection_engine, settings.resolved_cache_dir / "onnx"),  # as the classifier's
    )


def _detection_engine(cache_dir: Path) -> TrainingEngine:
    from visionloop.engines.detection.trainer import DetectionTrainer

    return DetectionTrainer(num_threads=1, cache_dir=cache_dir)


def fake_engine(num_threads: int = 1) -> TrainingEngine:
    """The deterministic colour engine (engines.fake), for tests: an EngineFactory like the real one."""
    from visionloop.engines.fake import ColourEngine

    return ColourEngine()


def build_serving(
    settings: Settings,
    engine_factory: EngineFactory | None = None,
    *,
    review_hook: ReviewHook | None = None,
    detection_log: DetectionLog | None = None,
) -> Serving:
    """The inference host (worker processes, created lazily) with the serving policy from settings, and
    what every detection is handed to (build_server passes its review hook and detection log). Every unit
    process builds its engine with ``engine_factory(threads)``; the default is the real engine of
    build_engine."""
    from visionloop.core.serving import Serving, ServingPolicy
    from visionloop.workflows.inference import ProcessInferenceHost

    host = ProcessInferenceHost(
        engine_factory or functools.partial(build_engine, settings),
        threads=settings.inference_threads,
        max_batch=settings.inference_max_batch,
        start_timeout=settings.inference_start_timeout,
    )
    policy = ServingPolicy(
        scale_up_seconds=settings.inference_scale_up_seconds,
        scale_down_seconds=settings.inference_scale_down_seconds,
        idle_timeout_seconds=settings.inference_idle_minutes * 60 or None,
        auto_start=settings.inference_auto_start,
        auto_start_wait_seconds=settings.inference_start_timeout,
        restore_on_restart=settings.inference_restore,
    )
    return Serving(host, policy, review_hook=review_hook, detection_log=detection_log)


def build_review_hook(services: Services, settings: Settings) -> ReviewHook:
    """The detection path's review hook: detections of projects with a review rule start human loops."""
    from visionloop.workflows.review_hook import ReviewHook

    return ReviewHook(services, region=settings.region, account=settings.account_id)


def build_detection_log(services: Services, settings: Settings) -> DetectionLog:
    """The detection log's writer (workflows.detection_log over core.detections) with the
    detection_log_* retention; it publishes the detection events of projects that want them."""
    from visionloop.core.detections import Retention, publish_detection_events
    from visionloop.workflows.detection_log import DetectionLog

    retention = Retention(
        days=settings.detection_log_days or None, max_rows=settings.detection_log_max_rows or None
    )
    log = DetectionLog(services, retention=retention)
    log.on_written.append(functools.partial(publish_detection_events, services))
    return log


def inbox_settings(settings: Settings) -> InboxSettings:
    """The watched inboxes' bucket and timings (core.inbox) from the settings."""
    from visionloop.core.inbox import InboxSettings

    return InboxSettings(bucket=settings.workflow_bucket, settle_seconds=settings.inbox_settle_seconds)


def analyser_factory(settings: Settings, num_threads: int | None = None) -> Callable[[str], Any]:
    """The pretrained analysers by kind (visionloop.analysis.registry: one per kind and options, models
    loaded on first use) as the settings choose them (``face_landmarks``)."""
    from visionloop.analysis.registry import create_analyser

    return functools.partial(create_analyser, num_threads=num_threads, face_landmarks=settings.face_landmarks)


def build_analysis(settings: Settings) -> Analysis:
    """The pretrained analysers and the threads that run them for the server."""
    from visionloop.core.analyzing import Analysis

    return Analysis(analyser_factory(settings, settings.inference_threads or None))


def server_analysis(state: Any) -> Analysis:
    """The app's Analysis (``app.state.analysis``, set from its Server; tests may put another there)."""
    analysis: Analysis = state.analysis
    return analysis


def build_notifier(services: Services, settings: Settings) -> Notifier:
    """The thread that delivers notifications (webhooks, e-mail through the smtp_* settings); not
    started."""
    from visionloop.core.notifications import RetryPolicy
    from visionloop.workflows.notifications import Notifier, SmtpConfig, build_senders

    smtp = SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        sender=settings.smtp_from,
        timeout=settings.notify_timeout_seconds,
    )
    policy = RetryPolicy(
        max_attempts=settings.notify_max_attempts, base_seconds=settings.notify_retry_seconds
    )
    senders = build_senders(settings.notify_timeout_seconds, smtp, settings.webhook_allow_private)
    return Notifier(services, senders, policy)


def build_inbox_watcher(services: Services, settings: Settings, serving: Serving) -> InboxWatcher:
    """The watcher of the workflow bucket's inboxes, detecting with the server's serving (not started;
    inbox_poll_seconds = 0: it only creates the bucket, and looks only when triggered through the API)."""
    from visionloop.workflows.inbox import InboxWatcher, serving_detector

    detector = serving_detector(services, serving)
    return InboxWatcher(services, detector, inbox_settings(settings), interval=settings.inbox_poll_seconds)


def build_worker(services: Services, settings: Settings) -> Worker:
    """What `visionloop worker` and the CLI's foreground training run jobs with."""
    from visionloop.workflows.worker import Worker

    return Worker(services, build_engine(settings), settings.region, settings.account_id)


def build_worker_pool(services: Services, settings: Settings) -> WorkerPool:
    """The server's ``settings.workers`` worker processes, watched (not started): a dead one's jobs are
    failed and it is replaced."""
    from visionloop.core.jobs import fail_jobs_of_worker
    from visionloop.workflows.supervisor import WorkerPool, start_worker
    from visionloop.workflows.worker import worker_id

    return WorkerPool(
        functools.partial(start_worker, settings),
        settings.workers,
        lambda pid, message: fail_jobs_of_worker(services, worker_id(pid), message),
    )


@dataclass
class Server:
    """Everything the server process runs: the HTTP layer (api.app.server_app) wires routes around it and
    its lifespan starts and stops ``background``. ``workers`` is the pool of worker processes when the
    server owns one (`visionloop serve`), else None."""

    services: Services
    settings: Settings
    serving: Serving
    accounts: Accounts
    analysis: Analysis
    rekognition: RekognitionBackend
    inbox_watcher: InboxWatcher
    background: BackgroundGroup
    workers: WorkerPool | None = None


def build_server(
    settings: Settings,
    services: Services | None = None,
    *,
    serving: Serving | None = None,
    accounts: Accounts | None = None,
    workers: bool = False,
) -> Server:
    """The server, nothing started. ``serving`` (default build_serving) gets the review hook and the
    detection log at construction; a Serving built elsewhere (tests) gets those it lacks. With
    ``workers`` the server owns the worker processes (server_background)."""
    from visionloop.aws.backend import RekognitionBackend

    services = services or build_services(settings)
    if serving is None:
        hook, log = build_review_hook(services, settings), build_detection_log(services, settings)
        serving = build_serving(settings, review_hook=hook, detection_log=log)
    else:
        serving.review_hook = serving.review_hook or build_review_hook(services, settings)
        serving.detection_log = serving.detection_log or build_detection_log(services, settings)
    analysis = build_analysis(settings)
    rekognition = RekognitionBackend(services, settings.region, settings.account_id, serving)
    rekognition.analysis = analysis
    watcher = build_inbox_watcher(services, settings, serving)
    pool = build_worker_pool(services, settings) if workers else None
    background = server_background(services, settings, serving, analysis, watcher, pool)
    accounts = accounts or build_accounts(services, settings)
    return Server(services, settings, serving, accounts, analysis, rekognition, watcher, background, pool)


def server_background(
    services: Services,
    settings: Settings,
    serving: Serving,
    analysis: Analysis,
    watcher: InboxWatcher,
    pool: WorkerPool | None,
) -> BackgroundGroup:
    """The server's background, in start order (stopped in reverse): with a worker ``pool``, the jobs
    and datasets a dead server left running are failed and the worker processes start; the review hook
    and the detection log; the analysers (closed at stop); the versions a previous server left RUNNING
    come back (the inference units close at stop); the serving maintenance (autoscaler, idle timeout);
    the inbox watcher; the notifier; the workflow runner (when workflow_enabled)."""
    from visionloop.core.entries import recover_interrupted_datasets
    from visionloop.core.jobs import recover_interrupted_jobs
    from visionloop.core.serving import maintain
    from visionloop.workflows.background import BackgroundGroup, Step, Ticker
    from visionloop.workflows.detection_log import DetectionLog
    from visionloop.workflows.review_hook import ReviewHook
    from visionloop.workflows.runner import build_runner
    from visionloop.workflows.units import InferenceUnits

    group = BackgroundGroup()
    if pool is not None:

        def cut_short() -> None:  # only while no worker runs: what the last server left running
            recover_interrupted_jobs(services)
            recover_interrupted_datasets(services)

        group.add("recovery of jobs and datasets", Step("recovery", start=cut_short))
        group.add("worker processes", pool)
    if isinstance(serving.review_hook, ReviewHook):
        group.add("review hook", serving.review_hook)
    if isinstance(serving.detection_log, DetectionLog):
        group.add("detection log", serving.detection_log)
    group.add("analysis", Step("analysis", stop=analysis.close))
    group.add("inference units", InferenceUnits(services, serving))
    maintenance = functools.partial(maintain, services, serving)
    group.add("serving maintenance", Ticker("visionloop-serving", maintenance, 0.5, delay_first=True))
    group.add("inbox watcher", watcher)
    group.add("notifier", build_notifier(services, settings))
    runner = build_runner(services, serving, settings)
    if runner is not None:
        group.add("workflow runner", runner)
    return group
