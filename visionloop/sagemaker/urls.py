"""The SageMaker JSON 1.1 protocol: ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``, the same path
as Rekognition's, so aws/urls.py hands a request here by its target's prefix (``serve``). SigV4 is the A2I
authenticator's (scoped to the service "sagemaker", what botocore's sagemaker client signs for) when
access keys are set. Every answer is JSON with ``Content-Type: application/x-amz-json-1.1`` and an
``x-amzn-RequestId``; a failure is ``{"__type", "message"}`` with the code also in ``X-Amzn-ErrorType``,
never a stack trace."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from visionloop.a2i.exceptions import A2IError
from visionloop.a2i.urls import _authenticator as authenticator
from visionloop.a2i.urls import _json as decode
from visionloop.aws.exceptions import AwsError
from visionloop.errors import VisionloopError
from visionloop.sagemaker.backend import SageMakerBackend
from visionloop.sagemaker.exceptions import InternalFailure, UnknownOperationException, from_domain
from visionloop.sagemaker.responses import OPERATIONS

log = logging.getLogger("visionloop.sagemaker")
CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "SageMaker."


def is_sagemaker(target: str | None) -> bool:
    return bool(target) and str(target).startswith(TARGET_PREFIX)


async def serve(request: Request, path: str) -> Response:
    """Answer a SageMaker request (``path``: the request target as signed)."""
    body = await request.body()
    request_id = str(uuid.uuid4())
    status, doc = await run_in_threadpool(handle, request.app.state, request.headers, body, path, request_id)
    headers = {"x-amzn-RequestId": request_id}
    if status != 200:
        headers["X-Amzn-ErrorType"] = str(doc["__type"])
    return Response(json.dumps(doc), status_code=status, media_type=CONTENT_TYPE, headers=headers)


def handle(
    state: Any, headers: Mapping[str, str], body: bytes, path: str, request_id: str
) -> tuple[int, dict[str, Any]]:
    """Authenticate, decode, dispatch; return (HTTP status, JSON document)."""
    try:
        authenticator(state).authenticate("POST", path, headers, body)
        operation = str(headers.get("x-amz-target"))[len(TARGET_PREFIX) :]
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise UnknownOperationException(f"SageMaker.{operation[:80]} is not an operation of this server.")
        return 200, handler(_backend(state), decode(body))
    except Exception as e:
        return failure(e, request_id)


def failure(exc: Exception, request_id: str) -> tuple[int, dict[str, Any]]:
    """The SageMaker error answer for ``exc``; anything unexpected is logged and answered without
    internals."""
    if isinstance(exc, AwsError):  # authentication (sigv4.py)
        return exc.status, {"__type": exc.code, "message": exc.message}
    error = from_domain(exc) if isinstance(exc, VisionloopError) else exc
    if not isinstance(error, A2IError):
        log.error("request %s failed", request_id, exc_info=exc)
        error = InternalFailure()
    return error.status, error.body()


def _backend(state: Any) -> SageMakerBackend:
    backend: SageMakerBackend | None = getattr(state, "sagemaker", None)
    if backend is None:
        backend = SageMakerBackend(state.services, state.settings.region, state.settings.account_id)
        state.sagemaker = backend
    return backend
