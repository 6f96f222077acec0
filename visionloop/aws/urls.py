"""The AWS JSON 1.1 endpoint: ``POST /`` with ``X-Amz-Target: RekognitionService.<Operation>`` and a JSON
body. Every answer is JSON with ``Content-Type: application/x-amz-json-1.1`` and an ``x-amzn-RequestId``;
every failure is an AWS error body, never a stack trace. An operation that waits on the inference units
(DetectCustomLabels) answers with a future, awaited here without holding a thread."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from visionloop import jsondoc
from visionloop.aws.auth import authenticator
from visionloop.aws.backend import RekognitionBackend
from visionloop.aws.exceptions import (
    AwsError,
    InternalServerError,
    InvalidParameterException,
    SerializationException,
    UnknownOperationException,
    from_domain,
)
from visionloop.aws.responses import Deferred, dispatch
from visionloop.errors import VisionloopError
from visionloop.sagemaker import urls as sagemaker

log = logging.getLogger("visionloop.aws")
CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService."
PATH = "/"

router = APIRouter()


@router.post(PATH, include_in_schema=False)
async def aws_json(request: Request) -> Response:
    target = _target(request)
    if sagemaker.is_sagemaker(request.headers.get("x-amz-target")):  # SageMaker.<Op>: the same path
        return await sagemaker.serve(request, target)
    body = await request.body()
    request_id = str(uuid.uuid4())
    status, doc = await run_in_threadpool(
        handle, request.app.state, request.headers, body, request_id, target
    )
    if isinstance(doc, Deferred):
        status, doc = await settle(doc, request_id)
    return _response(status, doc, request_id)


def error_response(error: AwsError, status: int | None = None) -> Response:
    """The answer ``error`` gets (with ``status`` instead of its own), outside any operation."""
    request_id = str(uuid.uuid4())
    return _response(status or error.status, error.body(request_id), request_id)


def _response(status: int, doc: dict[str, Any], request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if status != 200:
        headers["X-Amzn-ErrorType"] = str(doc["__type"])
    return Response(json.dumps(doc), status_code=status, media_type=CONTENT_TYPE, headers=headers)


def handle(
    state: Any, headers: Mapping[str, str], body: bytes, request_id: str, target: str = "/"
) -> tuple[int, dict[str, Any] | Deferred[Any]]:
    """Authenticate, decode, dispatch; return (HTTP status, JSON document or Deferred answer)."""
    try:
        authenticator(state).authenticate("POST", target, headers, body)
        operation = _operation(headers.get("x-amz-target"))
        return 200, dispatch(_backend(state), operation, _decode(body))
    except Exception as e:
        return failure(e, request_id)


async def settle(deferred: Deferred[Any], request_id: str) -> tuple[int, dict[str, Any]]:
    """Await a Deferred answer; a client that goes away cancels the future (and its queued work)."""
    try:
        return 200, deferred.finish(await asyncio.wrap_future(deferred.future))
    except Exception as e:
        return failure(e, request_id)


def failure(exc: Exception, request_id: str) -> tuple[int, dict[str, Any]]:
    """The AWS error answer for ``exc``; anything unexpected is logged and answered without internals."""
    error = from_domain(exc) if isinstance(exc, VisionloopError) else exc
    if not isinstance(error, AwsError):  # a bug or an outage
        log.error("request %s failed", request_id, exc_info=exc)
        error = InternalServerError()
    return error.status, error.body(request_id)


def _target(request: Request) -> str:
    """The request target as the client sent (and signed) it: the raw path and the query string, decoded
    as Latin-1 like the headers."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return (raw.partition(b"?")[0] + (b"?" + query if query else b"")).decode("latin-1")


def _operation(target: str | None) -> str:
    if not target:
        raise UnknownOperationException("The request has no X-Amz-Target header.")
    if not target.startswith(TARGET_PREFIX):
        raise UnknownOperationException(f"{target} is not an operation of this server.")
    return target[len(TARGET_PREFIX) :]


def _decode(body: bytes) -> dict[str, Any]:
    """The body as a JSON object: malformed, too deep or with a lone surrogate is a SerializationException;
    a number out of range (``1e400``, ``NaN``, beyond 64 bits) an InvalidParameterException naming it."""
    if not body.strip():
        return {}
    try:
        doc = jsondoc.loads(body)
    except jsondoc.OutOfRange as e:
        raise InvalidParameterException(e.message) from None
    except jsondoc.MalformedJson as e:
        raise SerializationException(e.message) from None
    if not isinstance(doc, dict):
        raise SerializationException("The request body must be a JSON object.")
    return doc


def _backend(state: Any) -> RekognitionBackend:
    """The backend the composition root built (bootstrap.build_server; api.app.server_app puts it here)."""
    backend: RekognitionBackend = state.rekognition
    return backend
