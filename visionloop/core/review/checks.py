"""The names and limits of human review: loop names, reviewer ids, and how much a flow or a loop may
hold."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from visionloop.errors import InvalidInput

MAX_REVIEWERS = 9
MAX_INPUT_CHARS = 3_145_728  # HumanLoopInput.InputContent's limit
MAX_OPEN_LOOPS = 10_000  # open (InProgress/Stopping) loops per flow; more is QuotaExceeded
TOP_GUESSES = 5  # model guesses kept with a loop
_LOOP_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
_REVIEWER = re.compile(r"^[^\s\x00-\x1f]{1,128}$")


def check_loop_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 63 or not _LOOP_NAME.match(name):
        raise InvalidInput(
            f"invalid human loop name {str(name)[:80]!r}: use 1-63 lower-case letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    return name


def check_reviewer(reviewer: str) -> str:
    if not isinstance(reviewer, str) or not _REVIEWER.match(reviewer):
        raise InvalidInput("a reviewer id is 1-128 characters without spaces or control characters")
    return reviewer


def new_loop_name(now: datetime) -> str:
    return f"review-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
