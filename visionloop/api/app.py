"""create_app(): the ASGI application. Routers stay thin: parse, call one use case, serialize."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Security
from starlette.concurrency import run_in_threadpool

from visionloop import __version__, web
from visionloop.a2i.urls import router as a2i_router
from visionloop.api import auth, errors, limits
from visionloop.api.analyze import router as analyze_router
from visionloop.api.datasets import router as datasets_router
from visionloop.api.detect import router as detect_router
from visionloop.api.detections import router as detections_router
from visionloop.api.notifications import router as notifications_router
from visionloop.api.parameters import router as parameters_router
from visionloop.api.projects import router as projects_router
from visionloop.api.review import router as review_router
from visionloop.api.versions import router as versions_router
from visionloop.api.workflow import router as workflow_router
from visionloop.aws.urls import router as aws_router
from visionloop.core.accounts import Accounts
from visionloop.core.services import Services
from visionloop.core.serving import Serving, maintain, recover_serving
from visionloop.settings import Settings
from visionloop.workflows.detection_log import DetectionLog
from visionloop.workflows.inbox import InboxWatcher, serving_detector
from visionloop.workflows.review_hook import ReviewHook


def create_app(
    services: Services, settings: Settings, serving: Serving | None = None, accounts: Accounts | None = None
) -> FastAPI:
    """``serving`` (the inference host and its policy) defaults to bootstrap.build_serving(settings).
    The lifespan brings back the versions a previous server left RUNNING, runs the autoscaler and the
    idle timeout, and stops every inference unit at shutdown. With ``settings.access_keys`` every request
    but /healthz and the API docs is authenticated (api/auth.py: SigV4 on the AWS API, bearer keys on the
    rest); without, none is. The reviewers' pages (visionloop.web, under /review/) use their own
    sign-in sessions with ``accounts`` (default: bootstrap.build_accounts)."""
    if serving is None:
        from visionloop.bootstrap import build_serving

        serving = build_serving(settings)
    if accounts is None:
        from visionloop.bootstrap import build_accounts

        accounts = build_accounts(services, settings)
    if serving.review_hook is None:  # detections of projects with a review rule may start human loops
        serving.review_hook = ReviewHook(services, region=settings.region, account=settings.account_id)
    if serving.detection_log is None:  # every detection is logged (core.detections)
        from visionloop.bootstrap import build_detection_log

        serving.detection_log = build_detection_log(services, settings)
    watcher = _inbox_watcher(services, settings, serving)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from visionloop.bootstrap import build_notifier
        from visionloop.workflows.background import Ticker
        from visionloop.workflows.runner import start_runner

        assert serving is not None
        await run_in_threadpool(recover_serving, services, serving)
        maintainer = Ticker("visionloop-serving", lambda: maintain(services, serving), 0.5, delay_first=True)
        maintainer.start()
        watcher.start()  # the watched inboxes of the workflow bucket
        notifier = build_notifier(services, settings).start()  # webhooks and e-mail, in the background
        # schedules and workflow runs (resumed first if a previous server left them RUNNING)
        runner = await run_in_threadpool(start_runner, services, serving, settings)
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            notifier.stop()
            await run_in_threadpool(watcher.stop)
            maintainer.stop()
            await run_in_threadpool(serving.host.close)
            if isinstance(serving.detection_log, DetectionLog):  # writes what is still queued
                await run_in_threadpool(serving.detection_log.stop)
            if isinstance(serving.review_hook, ReviewHook):
                serving.review_hook.stop()

    app = FastAPI(
        title="visionloop",
        version=__version__,
        docs_url="/docs",
        lifespan=lifespan,
        default_response_class=errors.SafeJSONResponse,
    )
    app.state.services = services
    app.state.settings = settings
    app.state.serving = serving
    app.state.inbox_watcher = watcher
    errors.install(app)
    secured = []
    if settings.access_keys:  # else no check at all: `visionloop serve` then listens on loopback only
        auth.install(app, settings.access_keys)
        secured = [Security(auth.BEARER_SCHEME)]  # documents the bearer key in /docs; auth enforces it
    # outermost: no body is read past its route's limit
    app.add_middleware(limits.BodyLimit, max_import_file_mb=settings.max_import_file_mb)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Status "degraded" while a worker process the server started is dead (being replaced)."""
        body: dict[str, Any] = {"status": "ok", "version": __version__}
        pool = getattr(app.state, "workers", None)  # `visionloop serve` sets its WorkerPool here
        if pool is not None:
            body["workers"] = workers = pool.health()
            if workers["alive"] < workers["expected"]:
                body["status"] = "degraded"
        return body

    for router in (projects_router, datasets_router, versions_router, detect_router, analyze_router):
        app.include_router(router, prefix="/api/v1", dependencies=secured)
    app.include_router(review_router, prefix="/api/v1", dependencies=secured)  # flows, loops
    app.include_router(detections_router, prefix="/api/v1", dependencies=secured)  # log, drift, inboxes
    app.include_router(workflow_router, prefix="/api/v1", dependencies=secured)  # runs, schedules
    for router in (parameters_router, notifications_router):  # parameters, events, channels
        app.include_router(router, prefix="/api/v1", dependencies=secured)
    app.include_router(aws_router)  # POST / with X-Amz-Target: RekognitionService.<Op>
    web.install(app, services, settings, accounts)  # /review/… and /static/…, signed in with cookies
    app.include_router(a2i_router)  # /human-loops: the A2I runtime API (REST-JSON)
    return app


def _inbox_watcher(services: Services, settings: Settings, serving: Serving) -> InboxWatcher:
    """The watcher of the workflow bucket's inboxes (started by the lifespan; inbox_poll_seconds = 0:
    it only creates the bucket, and looks only when triggered through the API)."""
    from visionloop.bootstrap import inbox_settings

    return InboxWatcher(
        services,
        serving_detector(services, serving),
        inbox_settings(settings),
        interval=settings.inbox_poll_seconds,
    )
