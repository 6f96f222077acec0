"""Request bodies: a size limit per route, applied before the body is read, and strict JSON on the native API.

BodyLimit is the outermost middleware of create_app, so nothing (not the SigV4 check, which hashes the
body, nor form parsing, which spools files to disk) reads more than a route's limit. A declared
``Content-Length`` over the limit is refused before one byte of the body is read; a body sent without one
(chunked) is counted as it arrives and refused at the first chunk over. The refusal is each API's own
error (413):

    AWS API (POST /)          ImageTooLargeException for the image operations, else ValidationException
    A2I API (/human-loops)    ValidationException
    native API and the rest   {"error": {"code": "RequestTooLarge", ...}}; web pages get plain text

The limits follow the largest request each route exists for: an AWS image operation carries at most 5 MiB
of image as base64 (about 7 MB of JSON), UpdateDatasetEntries 5 MB of JSON lines; A2I's InputContent is
up to 3 MiB of characters, escaped into JSON; native uploads carry one image (core ImageLimits); the
console's upload and manifest forms the max_import_file_mb setting; any other request JSON_LIMIT.

A native JSON body (``Content-Type: application/json``) is read here, checked by visionloop.jsondoc (lone
surrogates, nesting, numbers out of range: 400 naming the member) and handed on unchanged; a body that is
not JSON at all is left to the route (FastAPI's 422)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visionloop import jsondoc
from visionloop.a2i import exceptions as a2i_errors
from visionloop.a2i import urls as a2i_urls
from visionloop.api.auth import is_session_path
from visionloop.api.errors import envelope
from visionloop.api.images import max_body
from visionloop.aws import exceptions as aws_errors
from visionloop.aws import urls as aws_urls
from visionloop.core.analyzing import ANALYSIS_LIMITS
from visionloop.core.images import TRAINING_LIMITS
from visionloop.core.serving import DETECT_LIMITS
from visionloop.errors import InvalidInput

MiB = 1024 * 1024
JSON_LIMIT = 1 * MiB  # any request not listed below
AWS_LIMIT = 8 * MiB  # a 5 MiB image in base64 is ~7 MB of JSON (rekognition_api.md §1.6)
A2I_LIMIT = 8 * MiB  # InputContent: 3,145,728 characters, escaped inside the JSON body
FORM = -1  # in ROUTES: the console's forms of files, limited by the max_import_file_mb setting

# (method, path pattern, limit): the native and web routes that take more than JSON_LIMIT
ROUTES: tuple[tuple[str, re.Pattern[str], int], ...] = tuple(
    (method, re.compile(pattern), limit)
    for method, pattern, limit in (
        ("POST", r"/api/v1/projects/[^/]+/datasets/[^/]+/images", max_body(TRAINING_LIMITS.max_bytes)),
        ("POST", r"/api/v1/projects/[^/]+/(versions/[^/]+/)?detect", max_body(DETECT_LIMITS.max_bytes)),
        ("POST", r"/api/v1/analyze/[^/]+", max_body(ANALYSIS_LIMITS.max_bytes)),
        ("POST", r"/api/v1/projects/[^/]+/loops", A2I_LIMIT),  # an image, or an A2I InputContent
        ("POST", r"/console/projects/[^/]+/datasets/[^/]+/(upload|manifest)", FORM),
        ("POST", r"/console/(projects/[^/]+/)?try", max_body(DETECT_LIMITS.max_bytes)),
        ("POST", r"/console/faces/[^/]+/(index|search)", max_body(ANALYSIS_LIMITS.max_bytes)),
    )
)
# The AWS operations whose request carries an image: an oversized one is ImageTooLargeException.
AWS_IMAGE_OPERATIONS = frozenset(
    {"CompareFaces", "IndexFaces", "RecognizeCelebrities", "SearchFacesByImage", "SearchUsersByImage"}
)


@dataclass(frozen=True)
class Route:
    api: str  # "aws", "a2i", "web" or "native"
    limit: int


def route_of(method: str, path: str, form_limit: int = 64 * MiB) -> Route:
    """The API ``path`` belongs to and its body limit (``form_limit`` for the console's file forms)."""
    if path == aws_urls.PATH:
        return Route("aws", AWS_LIMIT)
    if path == a2i_urls.PREFIX or path.startswith(a2i_urls.PREFIX + "/"):
        return Route("a2i", A2I_LIMIT)
    api = "web" if is_session_path(path) else "native"
    for m, pattern, limit in ROUTES:
        if m == method and pattern.fullmatch(path):
            return Route(api, form_limit if limit == FORM else limit)
    return Route(api, JSON_LIMIT)


class BodyLimit:
    """ASGI middleware: refuses a request body over its route's limit without reading past it. The
    console's file forms (a batch of images, a manifest) may carry ``max_import_file_mb`` and 1 MiB more
    (its upload script sends batches of at most 24 MiB)."""

    def __init__(self, app: ASGIApp, max_import_file_mb: float = 64.0) -> None:
        self.app = app
        self.form_limit = int(max_import_file_mb * MiB) + MiB

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope["method"], scope["path"], self.form_limit)
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > route.limit:
            await too_large(route, headers)(scope, receive, send)
            return
        if route.api == "native" and _is_json(headers):
            await self._checked_json(route, headers, scope, receive, send)
            return
        guard = _Guard(receive, send, route.limit)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.tripped:
                raise
        if guard.tripped:  # everything the app sent after the limit was dropped
            await too_large(route, headers)(scope, receive, send)

    async def _checked_json(
        self, route: Route, headers: Headers, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await read_body(receive, route.limit)
        if body is None:
            await too_large(route, headers)(scope, receive, send)
            return
        try:
            if body.strip():
                jsondoc.loads(body)
        except jsondoc.NotJson:
            pass  # the route's own parser answers it (422 from FastAPI)
        except InvalidInput as e:
            await JSONResponse(envelope("InvalidInput", e.message), status_code=400)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


class _Guard:
    """Counts the body as the app reads it; over the limit, the app is told the client went away and
    whatever it then sends is dropped (BodyLimit answers instead)."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive, self._send, self._limit = receive, send, limit
        self._size = 0
        self.tripped = False

    async def receive(self) -> Message:
        if self.tripped:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self._size += len(message.get("body", b""))
            if self._size > self._limit:
                self.tripped = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if not self.tripped:
            await self._send(message)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is over ``limit`` bytes (or the client went away)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # waits for the disconnect, as the server would
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _is_json(headers: Headers) -> bool:
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def too_large(route: Route, headers: Headers) -> Response:
    """The refusal of a body over ``route.limit``, in the route's API's error shape."""
    message = f"The request body is larger than this operation's limit of {route.limit:,} bytes."
    if route.api == "aws":
        operation = headers.get("x-amz-target", "").rpartition(".")[2]
        image = operation.startswith("Detect") or operation in AWS_IMAGE_OPERATIONS
        if image:  # the modelled error (400), as for an image over its limit inside the body
            return aws_urls.error_response(aws_errors.ImageTooLargeException(message))
        return aws_urls.error_response(aws_errors.ValidationException(message), status=413)
    if route.api == "a2i":
        return a2i_urls.respond(413, a2i_errors.ValidationException(message).body())
    if route.api == "web":
        return PlainTextResponse(message, status_code=413)
    return JSONResponse(envelope("RequestTooLarge", message), status_code=413)
