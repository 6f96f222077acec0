"""Project policies as stored (core.policies holds their rules, storage/policies.py keeps them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from visionloop.errors import Conflict

MAX_POLICIES = 5  # per project, as Custom Labels allows


class RevisionMismatch(Conflict):
    """The revision id named is not the policy's current one (or the policy does not exist)."""


@dataclass(frozen=True)
class ProjectPolicy:
    project_id: int
    name: str
    document: str  # JSON, as the user wrote it
    revision_id: str
    created_at: datetime
    updated_at: datetime


class PolicyRepository(Protocol):
    """Where policies and copy records live (storage/policies.py). Each write checks and changes in one
    transaction, so concurrent writers of one project cannot break the revision or count rules."""

    def list_policies(self, project_id: int) -> list[ProjectPolicy]: ...

    def put_policy(
        self, project_id: int, name: str, document: str, expected: str | None, revision: str, now: datetime
    ) -> ProjectPolicy:
        """Create the policy (``expected`` None: AlreadyExists if the name is taken, QuotaExceeded past
        MAX_POLICIES) or replace it (RevisionMismatch unless ``expected`` is its current revision)."""
        ...

    def delete_policy(self, project_id: int, name: str, expected: str | None) -> None:
        """NotFound without such a policy; RevisionMismatch when ``expected`` is not its revision."""
        ...

    def record_copy(self, version_id: int, source_arn: str, now: datetime) -> None: ...

    def copy_sources(self, version_ids: Sequence[int]) -> dict[int, str]:
        """The source ARN of each of the versions that was made by a copy."""
        ...
