"""The single map from visionloop.errors to HTTP statuses and the JSON error envelope
``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from visionloop import errors

STATUS: tuple[tuple[type[errors.VisionloopError], int], ...] = (
    (errors.ImageTooLarge, 413),
    (errors.InvalidInput, 400),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.NotReady, 503),
    (errors.Conflict, 409),
    (errors.NotFitted, 409),
    (errors.TooManyAttempts, 429),
    (errors.Unauthenticated, 401),
    (errors.Unavailable, 503),
    (errors.StorageError, 500),
)


def status_for(exc: errors.VisionloopError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.VisionloopError)
    async def _domain(_: Request, exc: errors.VisionloopError) -> JSONResponse:
        return JSONResponse(
            envelope(type(exc).__name__, exc.message, exc.details), status_code=status_for(exc)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse(envelope("ValidationError", "the request is not valid", details), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(envelope("HTTPError", str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            envelope("InternalError", "an unexpected error occurred; see the server log"), status_code=500
        )
