"""create_app(): the ASGI application. Routers stay thin: parse, call one use case, serialize."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from visionloop import __version__
from visionloop.api import errors
from visionloop.api.datasets import router as datasets_router
from visionloop.api.projects import router as projects_router
from visionloop.api.versions import router as versions_router
from visionloop.aws.urls import router as aws_router
from visionloop.core.services import Services
from visionloop.settings import Settings


def create_app(services: Services, settings: Settings) -> FastAPI:
    app = FastAPI(title="visionloop", version=__version__, docs_url="/docs")
    app.state.services = services
    app.state.settings = settings
    errors.install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    app.include_router(projects_router, prefix="/api/v1")
    app.include_router(datasets_router, prefix="/api/v1")
    app.include_router(versions_router, prefix="/api/v1")
    app.include_router(aws_router)  # POST / with X-Amz-Target: RekognitionService.<Op>
    return app
