"""The authentication hook of the AWS endpoint. Every request passes through the app's authenticator
before it is dispatched; the default accepts any request (clients still sign with dummy keys). When the
``access_keys`` setting is set, api/auth.py installs the SigV4 verifier of sigv4.py as
``app.state.aws_authenticator``; it rejects a request by raising an AwsError (InvalidSignatureException,
UnrecognizedClientException, ...). ``path`` is the request target as received (raw path and query) and
``headers`` are as ASGI decodes them (Latin-1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Authenticator(Protocol):
    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None: ...


class AllowAll:
    """Development mode: no signature is checked."""

    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        return None


ALLOW_ALL = AllowAll()


def authenticator(state: Any) -> Authenticator:
    """The authenticator installed on the app's state, or ALLOW_ALL."""
    found: Authenticator = getattr(state, "aws_authenticator", None) or ALLOW_ALL
    return found
