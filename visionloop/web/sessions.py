"""Sign-in sessions in the browser: signed cookies and CSRF tokens.

    vl_session   the session token, signed with HMAC-SHA256 under the server secret; HttpOnly,
                 SameSite=Lax, Path=/, Secure over HTTPS (or always, with the secure_cookies setting).
                 The server keeps only the token's SHA-256 (core.accounts), so a copy of the database
                 signs nobody in, and a cookie not signed with the secret is refused before any lookup.
    vl_csrf      before sign-in only: a random token the sign-in form repeats (double submit), so another
                 site cannot sign a browser in to an account of its choosing; SameSite=Strict.

Every POST carries the session's CSRF token (hidden field ``csrf_token`` or header ``X-CSRF-Token``),
compared in constant time. The secret comes from the session_secret setting, or is generated once and
kept in ``<data_dir>/session_secret`` (mode 600)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from visionloop.core.accounts import Accounts, ReviewerSession, resume_session
from visionloop.errors import StorageError, Unauthenticated
from visionloop.settings import Settings

SESSION_COOKIE = "vl_session"
CSRF_COOKIE = "vl_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SECRET_FILE = "session_secret"


def load_session_secret(settings: Settings) -> bytes:
    """The session_secret setting, or the secret in <data_dir>/session_secret (created once)."""
    if settings.session_secret:
        return settings.session_secret.encode()
    path = settings.data_path / SECRET_FILE
    try:
        return _read_or_create(path)
    except OSError as e:
        raise StorageError(f"cannot read or create the session secret {path}: {e.strerror}") from e


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise StorageError(f"the session secret in {path} is shorter than 32 characters: delete the file")
    return secret.encode()


class Signer:
    """``value.signature`` with HMAC-SHA256, the signature bound to a purpose (the cookie's name)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, value: str) -> str:
        mac = hmac.new(self._secret, f"{purpose}|{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def sign(self, purpose: str, value: str) -> str:
        return f"{value}.{self._mac(purpose, value)}"

    def unsign(self, purpose: str, signed: str | None) -> str | None:
        """The value, or None when ``signed`` is absent or its signature is wrong."""
        if not signed or "." not in signed:
            return None
        value, _, mac = signed.rpartition(".")
        return value if hmac.compare_digest(mac.encode(), self._mac(purpose, value).encode()) else None


class SignInRequired(Exception):
    """Raised by a page that needs a session when there is none; the web layer redirects to sign-in
    (pages) or answers 401 (form posts and scripts)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfRejected(Exception):
    """A form posted without the right CSRF token: answered 403 without doing anything."""


@dataclass
class SessionCookies:
    signer: Signer
    accounts: Accounts
    always_secure: bool = False

    def secure(self, request: Request) -> bool:
        return self.always_secure or request.url.scheme == "https"

    # --- the session -----------------------------------------------------------------------------------

    def set_session(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.signer.sign(SESSION_COOKIE, token),
            max_age=int(self.accounts.policy.lifetime.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
        )

    def clear_session(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=self.secure(request)
        )

    def token(self, request: Request) -> str | None:
        return self.signer.unsign(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))

    def session(self, request: Request) -> ReviewerSession:
        """The request's live session, or SignInRequired."""
        token = self.token(request)
        if token is None:
            raise SignInRequired("sign in to review")
        try:
            return resume_session(self.accounts, token)
        except Unauthenticated as e:
            raise SignInRequired(e.message) from None

    # --- CSRF ----------------------------------------------------------------------------------------

    def check_csrf(self, request: Request, session: ReviewerSession, given: str | None) -> None:
        given = given or request.headers.get(CSRF_HEADER)
        if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
            raise CsrfRejected()

    def sign_in_csrf(self, request: Request) -> str:
        """The pre-session token of this browser (from its cookie), or a new one to set."""
        return self.signer.unsign(CSRF_COOKIE, request.cookies.get(CSRF_COOKIE)) or secrets.token_urlsafe(32)

    def set_sign_in_csrf(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            self.signer.sign(CSRF_COOKIE, token),
            path="/review/",
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )

    def check_sign_in_csrf(self, request: Request, given: str | None) -> None:
        expected = self.signer.unsign(CSRF_COOKIE, request.cookies.get(CSRF_COOKIE))
        if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise CsrfRejected()
