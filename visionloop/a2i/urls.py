"""The A2I runtime routes (REST-JSON, ``Content-Type: application/json``):

    POST   /human-loops          StartHumanLoop
    GET    /human-loops          ListHumanLoops (FlowDefinitionArn, CreationTimeAfter/Before, SortOrder,
                                 MaxResults, NextToken in the query)
    POST   /human-loops/stop     StopHumanLoop
    GET    /human-loops/{name}   DescribeHumanLoop
    DELETE /human-loops/{name}   DeleteHumanLoop

Every request passes the A2I authenticator first (``app.state.a2i_authenticator``: SigV4 scoped to the
service "sagemaker", installed by api/auth.py when access keys are set; else every request is accepted).
Every answer carries ``x-amzn-RequestId``; a failure is ``{"__type", "message"}`` with the code also in
``X-Amzn-ErrorType`` (what botocore reads for REST-JSON), never a stack trace."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from visionloop import jsondoc
from visionloop.a2i import responses
from visionloop.a2i.backend import A2IBackend
from visionloop.a2i.exceptions import A2IError, InternalServerException, ValidationException, from_domain
from visionloop.aws.auth import ALLOW_ALL, Authenticator
from visionloop.aws.exceptions import AwsError
from visionloop.errors import InvalidInput, VisionloopError

log = logging.getLogger("visionloop.a2i")
CONTENT_TYPE = "application/json"
PREFIX = "/human-loops"

router = APIRouter(include_in_schema=False)
Handler = Callable[[A2IBackend, Any, Mapping[str, str]], dict[str, Any]]


@router.post(PREFIX)
async def start_human_loop(request: Request) -> Response:
    return await _serve(request, lambda b, body, _: responses.start_human_loop(b, _json(body)))


@router.get(PREFIX)
async def list_human_loops(request: Request) -> Response:
    return await _serve(request, lambda b, _, query: responses.list_human_loops(b, query))


@router.post(PREFIX + "/stop")
async def stop_human_loop(request: Request) -> Response:
    return await _serve(request, lambda b, body, _: responses.stop_human_loop(b, _json(body)))


@router.get(PREFIX + "/{name}")
async def describe_human_loop(request: Request, name: str) -> Response:
    return await _serve(request, lambda b, _, __: responses.describe_human_loop(b, name))


@router.delete(PREFIX + "/{name}")
async def delete_human_loop(request: Request, name: str) -> Response:
    return await _serve(request, lambda b, _, __: responses.delete_human_loop(b, name))


@router.api_route(
    PREFIX + "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
)
async def unknown(request: Request, rest: str) -> Response:
    def refuse(*_: Any) -> dict[str, Any]:
        raise ValidationException(f"{request.method} {request.url.path} is not an A2I runtime operation.")

    return await _serve(request, refuse)


async def _serve(request: Request, handler: Handler) -> Response:
    body = await request.body()
    request_id = str(uuid.uuid4())
    status, doc = await run_in_threadpool(_handle, request, handler, body, request_id)
    return respond(status, doc, request_id)


def respond(status: int, doc: dict[str, Any], request_id: str | None = None) -> Response:
    """The answer: ``doc`` as JSON, with the error code also in ``X-Amzn-ErrorType`` when it failed."""
    headers = {"x-amzn-RequestId": request_id or str(uuid.uuid4())}
    if status != 200:
        headers["X-Amzn-ErrorType"] = str(doc["__type"])
    return Response(json.dumps(doc), status_code=status, media_type=CONTENT_TYPE, headers=headers)


def _handle(request: Request, handler: Handler, body: bytes, request_id: str) -> tuple[int, dict[str, Any]]:
    try:
        _authenticator(request.app.state).authenticate(
            request.method, _target(request), request.headers, body
        )
        query = dict(request.query_params.items())
        return 200, handler(_backend(request.app.state), body, query)
    except Exception as e:
        return failure(e, request_id)


def failure(exc: Exception, request_id: str) -> tuple[int, dict[str, Any]]:
    """The A2I error answer for ``exc``; anything unexpected is logged and answered without internals."""
    if isinstance(exc, AwsError):  # authentication (sigv4.py)
        return exc.status, {"__type": exc.code, "message": exc.message}
    error = from_domain(exc) if isinstance(exc, VisionloopError) else exc
    if not isinstance(error, A2IError):
        log.error("request %s failed", request_id, exc_info=exc)
        error = InternalServerException()
    return error.status, error.body()


def _json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; malformed, too deep, a lone surrogate or a number out of range is a
    ValidationException."""
    if not body.strip():
        return {}
    try:
        doc = jsondoc.loads(body)
    except InvalidInput as e:
        raise ValidationException(e.message) from None
    if not isinstance(doc, dict):
        raise ValidationException("The request body must be a JSON object.")
    return doc


def _target(request: Request) -> str:
    """The request target as the client sent (and signed) it: raw path and query string."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return (raw.partition(b"?")[0] + (b"?" + query if query else b"")).decode("latin-1")


def _authenticator(state: Any) -> Authenticator:
    found: Authenticator = getattr(state, "a2i_authenticator", None) or ALLOW_ALL
    return found


def _backend(state: Any) -> A2IBackend:
    backend: A2IBackend | None = getattr(state, "a2i", None)
    if backend is None:
        backend = A2IBackend(state.services, state.settings.region, state.settings.account_id)
        state.a2i = backend
    return backend
