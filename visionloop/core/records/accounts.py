"""The account records (core.accounts decides what they may do; storage.accounts stores them): an
account's role, the account, a signed-in browser's session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    """What an account may open in the browser."""

    OPERATOR = "operator"  # the web console (projects, datasets, training, ...) and the review pages
    REVIEWER = "reviewer"  # the review pages only


@dataclass(frozen=True)
class Reviewer:
    """An account (the name is historical: operators are accounts too, with another role)."""

    id: int
    name: str
    created_at: datetime
    password_changed_at: datetime
    role: Role = Role.REVIEWER


@dataclass(frozen=True)
class ReviewerSession:
    """A signed-in browser. ``key`` is the SHA-256 (hex) of the token in the browser's cookie."""

    key: str
    reviewer_id: int
    reviewer: str  # the reviewer's name
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    role: Role = Role.REVIEWER  # the account's role, read with the session

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR
