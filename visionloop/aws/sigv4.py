"""AWS Signature Version 4 verification (an Authenticator of aws/auth.py), written from the SigV4 spec
with hmac and hashlib. The server recomputes what the client signed and compares:

    canonical request   METHOD \\n canonical URI \\n canonical query \\n canonical headers \\n
                        signed headers \\n payload hash (x-amz-content-sha256, else sha256(body))
    string to sign      AWS4-HMAC-SHA256 \\n timestamp \\n date/region/service/aws4_request \\n
                        sha256(canonical request)
    signing key         HMAC chain over "AWS4" + secret: date, region, service, "aws4_request"
    signature           hex HMAC(signing key, string to sign), compared in constant time

Rejections are the AwsErrors AWS JSON services answer with: no Authorization header is
MissingAuthenticationTokenException (403); a header that cannot be parsed, or lacks a date, is
IncompleteSignatureException; an unknown key id (or a session token, which this server never issues) is
UnrecognizedClientException; a wrong signature, another service's scope, a scope date that is not the
request's, or a timestamp more than 5 minutes from the server's clock is InvalidSignatureException.
Any region is accepted: the server is one region, named by the ``region`` setting in its ARNs."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes

from visionloop.aws.exceptions import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=5)  # what Rekognition allows (docs: rekognition_api.md §1.4)
SERVICES = ("rekognition",)


@dataclass(frozen=True)
class Authorization:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


class SigV4Verifier:
    """Accepts a request signed with one of ``keys`` (access key id → secret) for one of ``services``.
    ``now`` is the server's clock (timezone-aware UTC)."""

    def __init__(
        self,
        keys: Mapping[str, str],
        services: Iterable[str] = SERVICES,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_skew: timedelta = MAX_SKEW,
    ) -> None:
        self._keys = dict(keys)
        self._services = tuple(services)
        self._now = now
        self._max_skew = max_skew

    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        """``path`` is the request target as received (the raw path, then ``?query`` if there is one) and
        ``headers`` the request's headers, both as ASGI servers decode them (Latin-1)."""
        values = _header_values(headers)
        if not values.get("authorization", [""])[0].strip():
            raise MissingAuthenticationTokenException()
        auth = parse_authorization(values["authorization"][0])
        timestamp = _timestamp(values)
        self._check_scope(auth, timestamp)
        secret = self._keys.get(auth.access_key)
        if secret is None or "x-amz-security-token" in values:
            raise UnrecognizedClientException()
        payload_hash = hashlib.sha256(body).hexdigest()
        claimed = values.get("x-amz-content-sha256", [payload_hash])[0]
        if claimed.lower() != payload_hash:
            raise InvalidSignatureException(
                "The x-amz-content-sha256 header does not match the SHA-256 of the request body."
            )
        canonical = canonical_request(method, path, values, auth.signed_headers, claimed)
        to_sign = string_to_sign(timestamp, auth.scope, canonical)
        expected = signature(secret, auth, to_sign)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode("utf-8", "replace")):
            raise InvalidSignatureException(
                f"{InvalidSignatureException.default_message}\n\n"
                f"The Canonical String for this request should have been\n'{canonical}'\n\n"
                f"The String-to-Sign should have been\n'{to_sign}'\n"
            )

    def _check_scope(self, auth: Authorization, timestamp: str) -> None:
        if auth.service not in self._services:
            expected = "' or '".join(self._services)
            raise InvalidSignatureException(f"Credential should be scoped to correct service: '{expected}'.")
        if auth.date != timestamp[:8]:
            raise InvalidSignatureException(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{auth.date}' != '{timestamp[:8]}', from '{timestamp}'."
            )
        signed_at = datetime.strptime(timestamp, TIMESTAMP).replace(tzinfo=UTC)
        now = self._now()
        minutes = f"{self._max_skew.total_seconds() / 60:g} min."
        if signed_at < now - self._max_skew:
            raise InvalidSignatureException(
                f"Signature expired: {timestamp} is now earlier than "
                f"{_fmt(now - self._max_skew)} ({_fmt(now)} - {minutes})"
            )
        if signed_at > now + self._max_skew:
            raise InvalidSignatureException(
                f"Signature not yet current: {timestamp} is still later than "
                f"{_fmt(now + self._max_skew)} ({_fmt(now)} + {minutes})"
            )


def parse_authorization(header: str) -> Authorization:
    """Split the Authorization header; IncompleteSignatureException says what is missing or malformed."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported authorization scheme '{algorithm[:40]}': this server verifies {ALGORITHM} only."
        )
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq:
            raise IncompleteSignatureException(
                f"'{part.strip()[:80]}' in the Authorization header is not a name=value pair."
            )
        params[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not params.get(n)]
    if missing:
        raise IncompleteSignatureException(
            " ".join(f"Authorization header requires '{n}' parameter." for n in missing)
        )
    credential = params["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        raise IncompleteSignatureException(
            "Credential must have the form <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request."
        )
    access_key, date, region, service, terminator = credential
    if terminator != TERMINATOR:
        raise IncompleteSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator[:40]}'."
        )
    signed = tuple(params["SignedHeaders"].split(";"))
    if not all(signed):
        raise IncompleteSignatureException("SignedHeaders has an empty header name.")
    if "host" not in (h.lower() for h in signed):
        raise IncompleteSignatureException("SignedHeaders must include 'host'.")
    return Authorization(access_key, date, region, service, signed, params["Signature"])


def canonical_request(
    method: str, target: str, headers: Mapping[str, list[str]], signed_headers: tuple[str, ...], payload: str
) -> str:
    """The canonical request of the spec; ``headers`` maps lower-case names to all their values."""
    path, _, query = target.partition("?")
    lines = [method.upper(), canonical_uri(path), canonical_query(query)]
    for name in signed_headers:
        found = headers.get(name.lower())
        if not found:
            raise IncompleteSignatureException(f"The signed header '{name[:80]}' is not in the request.")
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in found)}")
    lines += ["", ";".join(signed_headers), payload]
    return "\n".join(lines)


def canonical_uri(raw_path: str) -> str:
    """The path as received (still percent-encoded), without dot segments and empty segments, then
    URI-encoded once more: AWS services other than S3 encode each segment twice, as botocore does."""
    return quote_from_bytes(_wire_bytes(_remove_dot_segments(raw_path or "/")), safe="/~")


def canonical_query(query: str) -> str:
    """Each name and value decoded, then encoded again with only A-Z a-z 0-9 - _ . ~ left as they are;
    sorted by name, then value."""
    pairs = []
    for item in _wire_bytes(query).split(b"&"):
        if item:
            name, _, value = item.partition(b"=")
            pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def signature(secret: str, auth: Authorization, to_sign: str) -> str:
    key = f"AWS4{secret}".encode()
    for part in (auth.date, auth.region, auth.service, TERMINATOR):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def _encode(component: bytes) -> str:
    """Decoded as a form value ('+' is a space, as botocore's requests send it), then encoded again."""
    return quote_from_bytes(unquote_to_bytes(component.replace(b"+", b" ")), safe="-_.~")


def _wire_bytes(text: str) -> bytes:
    """The bytes an ASGI server decoded as Latin-1 (other text: its UTF-8)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _header_values(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-case names to every value (Starlette's Headers.items() lists repeated headers), read back
    as the UTF-8 text the client signed."""
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        text = _wire_bytes(value).decode("utf-8", "surrogateescape")
        values.setdefault(name.lower(), []).append(text)
    return values


def _timestamp(headers: Mapping[str, list[str]]) -> str:
    """The request's time as YYYYMMDDTHHMMSSZ: X-Amz-Date, else the Date header."""
    if "x-amz-date" in headers:
        value = headers["x-amz-date"][0].strip()
        try:
            if len(value) != 16:
                raise ValueError(value)
            datetime.strptime(value, TIMESTAMP)
        except ValueError:
            raise IncompleteSignatureException(
                f"X-Amz-Date must be an ISO-8601 basic timestamp like 20260102T030405Z, not '{value[:40]}'."
            ) from None
        return value
    if "date" in headers:
        try:
            when = parsedate_to_datetime(headers["date"][0])
            return _fmt(when if when.tzinfo else when.replace(tzinfo=UTC))
        except (TypeError, ValueError, IndexError, OverflowError):
            raise IncompleteSignatureException("The Date header is not an RFC 1123 date.") from None
    raise IncompleteSignatureException(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def _fmt(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIMESTAMP)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, and empty segments dropped (what AWS and botocore do)."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last
