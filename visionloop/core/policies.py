"""Project policies: the resource policies a project carries (Rekognition's PutProjectPolicy), and the one
decision they take here, whether a model version of the project may be copied into another project.

A policy is an IAM JSON document kept as the user wrote it, under a name, with a revision id that changes
on every update (an update or delete that names an older revision is refused, so two writers cannot
overwrite each other unseen). A project has at most MAX_POLICIES of them.

This server is one account, so the rule that AWS applies between accounts is applied between projects:

- a copy within the same project is always allowed;
- a copy into another project is allowed while the source project has no policy (AWS allows copies
  within an account under IAM alone);
- once the source project has a policy, a copy into another project is allowed only if some statement
  with Effect Allow has an Action (or NotAction) matching ``rekognition:CopyProjectVersion`` and a
  Resource (or NotResource) matching the source version's ARN, and no Deny statement matches. Action and
  Resource patterns take IAM's wildcards ``*`` and ``?``; actions match without regard to case. Principal
  is required (a resource policy names whom it trusts) but every caller is this account's. A statement
  with a Condition cannot be evaluated here: it never allows, and a Deny with one always denies.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any

from visionloop.core.records.policies import PolicyRepository, ProjectPolicy
from visionloop.errors import Forbidden, InvalidInput

MAX_DOCUMENT = 2000  # characters of a policy document
NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,128}$")
REVISION = re.compile(r"^[0-9A-Fa-f]{1,64}$")
DOCUMENT_CHARS = re.compile(r"^[\t\n\r\u0020-\u00ff]+$")
COPY_ACTION = "rekognition:CopyProjectVersion"
VERSIONS = ("2012-10-17", "2008-10-17")
DOCUMENT_KEYS = {"Version", "Id", "Statement"}
STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


class MalformedPolicy(InvalidInput):
    """A policy document that is not JSON, or not an IAM policy this server can read."""


class CopyDenied(Forbidden):
    """The source project's policies do not allow copying its model version into another project."""


# --- the use cases ---------------------------------------------------------------------------------


def put_policy(
    repo: PolicyRepository,
    project_id: int,
    name: str,
    document: str,
    expected: str | None,
    now: datetime,
) -> ProjectPolicy:
    """Attach or update a policy after checking its name, revision and document."""
    check_name(name)
    if expected is not None and not REVISION.match(expected):
        raise InvalidInput(f"PolicyRevisionId {expected!r} is not a revision id (1-64 hex digits)")
    parse_document(document)
    return repo.put_policy(project_id, name, document, expected, uuid.uuid4().hex, now)


def delete_policy(repo: PolicyRepository, project_id: int, name: str, expected: str | None) -> None:
    check_name(name)
    if expected is not None and not REVISION.match(expected):
        raise InvalidInput(f"PolicyRevisionId {expected!r} is not a revision id (1-64 hex digits)")
    repo.delete_policy(project_id, name, expected)


def check_copy(
    repo: PolicyRepository, source_project_id: int, destination_project_id: int, version_arn: str
) -> None:
    """CopyDenied unless the rule of this module's docstring allows the copy."""
    if source_project_id == destination_project_id:
        return
    policies = repo.list_policies(source_project_id)
    if not policies:
        return
    statements = [s for p in policies for s in parse_document(p.document)]
    matching = [s for s in statements if _applies(s, COPY_ACTION, version_arn)]
    if any(s["Effect"] == "Deny" for s in matching):
        raise CopyDenied(f"a Deny statement of the source project's policies forbids copying {version_arn}")
    if not any(s["Effect"] == "Allow" and "Condition" not in s for s in matching):
        raise CopyDenied(
            f"no statement of the source project's {len(policies)} policies allows "
            f"{COPY_ACTION} on {version_arn}"
        )


# --- reading documents -----------------------------------------------------------------------------


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise InvalidInput(f"policy name {name!r} must be 1-128 letters, digits, '_', '.' or '-'")


def parse_document(document: str) -> list[dict[str, Any]]:
    """The document's statements, checked; MalformedPolicy says what is wrong."""
    if not document or len(document) > MAX_DOCUMENT or not DOCUMENT_CHARS.match(document):
        raise MalformedPolicy(
            f"a policy document is 1-{MAX_DOCUMENT} characters of tab, newline or U+0020-U+00FF"
        )
    try:
        doc = json.loads(document)
    except ValueError as e:
        raise MalformedPolicy(f"the policy document is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise MalformedPolicy("the policy document must be a JSON object")
    unknown = sorted(set(doc) - DOCUMENT_KEYS)
    if unknown:
        raise MalformedPolicy(f"unknown policy element {unknown[0]!r}; use Version, Id and Statement")
    if "Version" in doc and doc["Version"] not in VERSIONS:
        raise MalformedPolicy(f"Version must be one of {', '.join(VERSIONS)}")
    raw = doc.get("Statement")
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list) or not statements:
        raise MalformedPolicy("the policy document needs a Statement (an object or a non-empty list)")
    for i, s in enumerate(statements):
        _check_statement(i, s)
    return statements


def _check_statement(i: int, s: object) -> None:
    where = f"Statement {i + 1}"
    if not isinstance(s, dict):
        raise MalformedPolicy(f"{where} is not an object")
    unknown = sorted(set(s) - STATEMENT_KEYS)
    if unknown:
        raise MalformedPolicy(f"{where}: unknown element {unknown[0]!r}")
    if s.get("Effect") not in ("Allow", "Deny"):
        raise MalformedPolicy(f"{where}: Effect must be Allow or Deny")
    if ("Principal" in s) == ("NotPrincipal" in s):
        raise MalformedPolicy(f"{where}: a project policy needs exactly one of Principal and NotPrincipal")
    for plain, negated in (("Action", "NotAction"), ("Resource", "NotResource")):
        if (plain in s) == (negated in s):
            raise MalformedPolicy(f"{where}: needs exactly one of {plain} and {negated}")
        _patterns(where, s.get(plain, s.get(negated)))
    if "Condition" in s and not isinstance(s["Condition"], dict):
        raise MalformedPolicy(f"{where}: Condition must be an object")


def _patterns(where: str, value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise MalformedPolicy(f"{where}: Action and Resource are a string or a non-empty list of strings")
    return items


def _applies(s: dict[str, Any], action: str, resource: str) -> bool:
    """Whether statement ``s`` covers ``action`` on ``resource`` (its Condition aside)."""
    return _covers(s, "Action", action, fold=True) and _covers(s, "Resource", resource, fold=False)


def _covers(s: dict[str, Any], element: str, value: str, *, fold: bool) -> bool:
    if element in s:
        return any(_wildcard(p, fold).match(value) for p in _patterns("", s[element]))
    return not any(_wildcard(p, fold).match(value) for p in _patterns("", s[f"Not{element}"]))


@lru_cache(maxsize=256)
def _wildcard(pattern: str, fold: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` any one character, the rest literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if fold else re.DOTALL)
