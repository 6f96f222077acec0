"""Authentication of the HTTP server, installed by create_app when the ``access_keys`` setting is set:

    native API and anything else   ``Authorization: Bearer <key>``, where a key is the secret of one of
                                   the access keys; checked here, before the request body is read
    AWS API (POST /)               SigV4, by visionloop.aws.sigv4 (the endpoint's authenticator hook)
    A2I API (/human-loops...)      SigV4 scoped to the service "sagemaker" (visionloop.a2i.urls)
    /healthz, /docs, /openapi.json open, so probes and the API reference work without a key
    /review/..., /console/...,     the web pages (visionloop.web): their own sign-in sessions (cookies);
    /static/..., GET /             GET / only redirects to /console/

A refused request gets 401 with the usual error envelope and ``WWW-Authenticate: Bearer`` (RFC 6750).
Paths are refused unless listed as open, so a router added later is protected without doing anything."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from visionloop.api.errors import envelope
from visionloop.aws.sigv4 import SigV4Verifier
from visionloop.settings import AccessKey

AWS_ENDPOINT = "/"  # authenticated by SigV4, not by bearer keys
A2I_PREFIX = "/human-loops"  # the A2I runtime API: SigV4 too (service "sagemaker")
OPEN_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
REALM = 'Bearer realm="visionloop"'
# Pages for people authenticate with session cookies (visionloop.web), not bearer keys.
SESSION_PATHS = frozenset({"/review", "/console"})
SESSION_PREFIXES = ("/review/", "/console/", "/static/")


def is_session_path(path: str) -> bool:
    return path in SESSION_PATHS or path.startswith(SESSION_PREFIXES)


# Documents the scheme in /openapi.json, so /docs offers "Authorize"; BearerAuth enforces it.
BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    description="The secret of one of the server's access keys (setting access_keys).",
)


class BearerAuth:
    """ASGI middleware: lets a request through when it is on an open path, a web page's path (checked by
    the page's session) or carries a valid bearer key."""

    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        self.app = app
        self._keys = [k.encode() for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path == A2I_PREFIX or path.startswith(A2I_PREFIX + "/"):  # SigV4, checked by a2i/urls.py
            await self.app(scope, receive, send)
            return
        if (
            scope["type"] not in ("http", "websocket")
            or scope["path"] in OPEN_PATHS | {AWS_ENDPOINT}
            or is_session_path(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").strip().partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else ""
        if given and self.valid(given):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation
        else:
            await self.refuse(bool(given))(scope, receive, send)

    @staticmethod
    def refuse(wrong_key: bool) -> JSONResponse:
        if wrong_key:
            challenge, message = f'{REALM}, error="invalid_token"', "The API key is not valid."
        else:
            challenge = REALM
            message = "This API needs an API key: send the header 'Authorization: Bearer <key>'."
        return JSONResponse(
            envelope("Unauthorized", message), status_code=401, headers={"WWW-Authenticate": challenge}
        )

    def valid(self, token: str) -> bool:
        """Compares with every key in constant time, so the answer's timing tells nothing."""
        given = token.encode("utf-8", "surrogateescape")
        return sum(hmac.compare_digest(given, key) for key in self._keys) > 0


def install(app: FastAPI, keys: tuple[AccessKey, ...]) -> None:
    """Require SigV4 on the AWS endpoint and bearer keys everywhere else but the open paths."""
    app.state.aws_authenticator = SigV4Verifier({k.id: k.secret for k in keys})
    app.state.a2i_authenticator = SigV4Verifier({k.id: k.secret for k in keys}, services=("sagemaker",))
    app.add_middleware(BearerAuth, keys=[k.secret for k in keys])
