"""NextToken / MaxResults. A token is opaque to clients and stable: the same position in the same query
gives the same token. It carries the offset and a digest of the query's filters, so a token from another
query is refused (InvalidPaginationTokenException) instead of returning a wrong page."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from visionloop.aws.exceptions import InvalidPaginationTokenException
from visionloop.aws.params import Params

T = TypeVar("T")
MAX_RESULTS = 100


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    scope: str  # digest of the operation and its filters

    def token_after(self, count: int, more: bool) -> str | None:
        """The token of the next page when there is one (``count`` items were returned)."""
        return encode(self.offset + count, self.scope) if more else None

    def slice(self, items: Sequence[T]) -> tuple[list[T], str | None]:
        """This page of ``items`` (the whole, ordered result) and the next token."""
        chunk = list(items[self.offset : self.offset + self.limit])
        return chunk, self.token_after(len(chunk), self.offset + len(chunk) < len(items))


def page(params: Params, operation: str, filters: Mapping[str, object], default: int = MAX_RESULTS) -> Page:
    """Read MaxResults (1..100) and NextToken for ``operation`` whose other inputs are ``filters``."""
    limit = params.integer("MaxResults", lo=1, hi=MAX_RESULTS) or default
    scope = _scope(operation, filters)
    token = params.string("NextToken", max_len=1024)
    return Page(decode(token, scope) if token else 0, limit, scope)


def _scope(operation: str, filters: Mapping[str, object]) -> str:
    text = json.dumps([operation, filters], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(offset: int, scope: str) -> str:
    raw = json.dumps({"o": offset, "s": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, scope: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        offset, token_scope = doc["o"], doc["s"]
    except (ValueError, TypeError, KeyError):
        raise InvalidPaginationTokenException() from None
    if token_scope != scope or not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidPaginationTokenException()
    return offset
