"""Composition root: the one place that picks adapters for the core's ports."""

from __future__ import annotations

import functools
import importlib.util
from typing import TYPE_CHECKING, Any

from visionloop.core.ports import SceneClusterer, TrainingEngine
from visionloop.core.services import Services
from visionloop.imaging import PillowInspector
from visionloop.settings import Settings
from visionloop.storage import open_object_store, open_repository

if TYPE_CHECKING:
    from visionloop.core.accounts import Accounts
    from visionloop.core.analyzing import Analysis
    from visionloop.core.inbox import InboxSettings
    from visionloop.core.serving import Serving
    from visionloop.workflows.detection_log import DetectionLog
    from visionloop.workflows.inference import EngineFactory
    from visionloop.workflows.notifications import Notifier


def build_services(settings: Settings) -> Services:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    return Services(
        repo=open_repository(settings.resolved_database_url),
        store=open_object_store(settings.resolved_store_url),
        buckets=open_object_store(settings.resolved_buckets_url),
        inspector=PillowInspector(),
        scenes=_scenes(settings),
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
    """The machine-learning engine (imported lazily: serving without training needs none of it)."""
    from visionloop.engines.classification import ClassificationEngine

    return ClassificationEngine(cache_dir=settings.resolved_cache_dir, num_threads=num_threads)


def fake_engine(num_threads: int = 1) -> TrainingEngine:
    """The deterministic colour engine (engines.fake), for tests: an EngineFactory like the real one."""
    from visionloop.engines.fake import ColourEngine

    return ColourEngine()


def build_serving(settings: Settings, engine_factory: EngineFactory | None = None) -> Serving:
    """The inference host (worker processes, created lazily) with the serving policy from settings.
    Every unit process builds its engine with ``engine_factory(threads)``; the default is the real
    engine of build_engine."""
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
    return Serving(host, policy)


def build_detection_log(services: Services, settings: Settings) -> DetectionLog:
    """The detection log's writer (core.detections) with the detection_log_* retention; it publishes
    the detection events of projects that want them."""
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


def build_analysis(settings: Settings) -> Analysis:
    """The pretrained analysers (visionloop.analysis.registry: one per kind, models loaded on first
    use) and the threads that run them for the server."""
    from visionloop.analysis.registry import create_analyser
    from visionloop.core.analyzing import Analysis

    threads = settings.inference_threads or None
    return Analysis(functools.partial(create_analyser, num_threads=threads))


def server_analysis(state: Any) -> Analysis:
    """The app's Analysis (``app.state.analysis``), built from its settings on first use."""
    analysis: Analysis | None = getattr(state, "analysis", None)
    if analysis is None:
        analysis = build_analysis(state.settings)
        state.analysis = analysis
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
