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
from visionloop.api.batch import router as batch_router
from visionloop.api.collections import router as collections_router
from visionloop.api.copies import router as copies_router
from visionloop.api.datasets import router as datasets_router
from visionloop.api.detect import router as detect_router
from visionloop.api.detections import router as detections_router
from visionloop.api.faces import router as faces_router
from visionloop.api.notifications import router as notifications_router
from visionloop.api.parameters import router as parameters_router
from visionloop.api.projects import router as projects_router
from visionloop.api.review import router as review_router
from visionloop.api.versions import router as versions_router
from visionloop.api.workflow import router as workflow_router
from visionloop.aws.urls import router as aws_router
from visionloop.bootstrap import Server, build_server
from visionloop.core.accounts import Accounts
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.settings import Settings


def create_app(
    services: Services, settings: Settings, serving: Serving | None = None, accounts: Accounts | None = None
) -> FastAPI:
    """The app of bootstrap.build_server(settings, services, serving=…, accounts=…): ``serving`` (the
    inference host and its policy) defaults to bootstrap.build_serving(settings), ``accounts`` (the
    reviewers' and operators' sign-in) to bootstrap.build_accounts."""
    return server_app(build_server(settings, services, serving=serving, accounts=accounts))


def server_app(server: Server) -> FastAPI:
    """HTTP around ``server``: its lifespan starts the server's background (bringing back the versions a
    previous server left RUNNING, the autoscaler, the inbox watcher, the notifier, the workflow runner;
    bootstrap.build_server) and stops it at shutdown (the inference units, then what is still queued for
    the detection log and the review hook). With ``settings.access_keys`` every request but /healthz and
    the API docs is authenticated (api/auth.py: SigV4 on the AWS API, bearer keys on the rest); without,
    none is. The reviewers' pages (visionloop.web, under /review/) use their own sign-in sessions with
    the server's accounts."""
    services, settings = server.services, server.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(server.background.start)
        try:
            yield
        finally:
            await run_in_threadpool(server.background.stop)

    app = FastAPI(
        title="visionloop",
        version=__version__,
        docs_url="/docs",
        lifespan=lifespan,
        default_response_class=errors.SafeJSONResponse,
    )
    app.state.server = server
    app.state.services = services
    app.state.settings = settings
    app.state.serving = server.serving
    app.state.inbox_watcher = server.inbox_watcher
    app.state.analysis = server.analysis
    app.state.rekognition = server.rekognition  # the AWS API's backend (aws/urls.py)
    app.state.workers = server.workers  # the worker processes `visionloop serve` owns, else None
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
        pool = app.state.workers
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
    app.include_router(faces_router, prefix="/api/v1", dependencies=secured)  # detect, compare
    app.include_router(collections_router, prefix="/api/v1", dependencies=secured)  # faces, users, search
    for router in (parameters_router, notifications_router):  # parameters, events, channels
        app.include_router(router, prefix="/api/v1", dependencies=secured)
    app.include_router(batch_router, prefix="/api/v1", dependencies=secured)  # batch inference
    app.include_router(copies_router, prefix="/api/v1", dependencies=secured)  # copies, project policies
    app.include_router(aws_router)  # POST / with X-Amz-Target: RekognitionService.<Op>
    web.install(app, services, settings, server.accounts)  # /review/… and /static/…, signed in with cookies
    app.include_router(a2i_router)  # /human-loops: the A2I runtime API (REST-JSON)
    return app
