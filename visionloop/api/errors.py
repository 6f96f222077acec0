"""The single map from visionloop.errors to HTTP statuses and the JSON error envelope
``{"error": {"code", "message", "details"}}``. An error never echoes much of the request: messages and
the text in details are cut to 1,000 characters (aws.exceptions.clip), and a validation error's
``input`` is not sent at all. Every JSON answer is a SafeJSONResponse, so text stored before the APIs
refused lone surrogates still renders (as U+FFFD) instead of failing the request."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from visionloop import errors, jsondoc
from visionloop.aws.exceptions import clip

STATUS: tuple[tuple[type[errors.VisionloopError], int], ...] = (
    (errors.ImageTooLarge, 413),
    (errors.InvalidInput, 400),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.Conflict, 409),
    (errors.NotFitted, 409),
    (errors.TooManyAttempts, 429),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.Unavailable, 503),
    (errors.StorageError, 500),
)


def status_for(exc: errors.VisionloopError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


class SafeJSONResponse(JSONResponse):
    """JSONResponse whose text is encoded with lone surrogates replaced, never failing on them."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        return utf8(text)


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, a lone surrogate (which UTF-8 cannot carry) replaced by U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return jsondoc.SURROGATE.sub("\ufffd", text).encode("utf-8")


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": clip(message), "details": _clipped(details or {})}}


def _clipped(value: Any) -> Any:
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, dict):
        return {k: _clipped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clipped(v) for v in value]
    return value


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.VisionloopError)
    async def _domain(_: Request, exc: errors.VisionloopError) -> JSONResponse:
        return SafeJSONResponse(
            envelope(type(exc).__name__, exc.message, exc.details), status_code=status_for(exc)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return SafeJSONResponse(
            envelope("ValidationError", "the request is not valid", details), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return SafeJSONResponse(envelope("HTTPError", str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return SafeJSONResponse(
            envelope("InternalError", "an unexpected error occurred; see the server log"), status_code=500
        )
