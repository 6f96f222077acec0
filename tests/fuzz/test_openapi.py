"""Schemathesis over the server's own /openapi.json: for every operation, cases that fit the schema and
cases that break it (schemathesis' negative mode), half of them aimed at what the seed made (the path
parameters set to the seeded project, version, entry, loop...). No answer may be a 5xx, and an answer must
have the content type the schema declares for its status (JSON for the API's answers and errors)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import content_type_conformance

from tests.fuzz.conftest import FuzzServer, Seeds
from tests.fuzz.harness import TALLY, budget, describe, run_cases

API = "openapi"
CHECKS = [not_a_server_error, content_type_conformance]


def contained(source: Any, seeds: Seeds) -> Any:
    """An import source that exists outside the test's folders becomes the seeded folder: a generated "/"
    or "." must not make the server walk this machine's disks."""
    if not isinstance(source, str) or source.startswith("s3://"):
        return source
    try:
        found = os.path.exists(source)
    except (ValueError, OSError):
        return source
    root = Path(seeds.folder).parent
    return seeds.folder if found and root not in Path(os.path.abspath(source)).parents else source


def aim(case: schemathesis.Case, seeds: Seeds, aimed: bool) -> None:
    if aimed and case.path_parameters:
        for name in case.path_parameters:
            values = seeds.path_values.get(name)
            if values:
                case.path_parameters[name] = values[hash((case.path, name)) % len(values)]
    if isinstance(case.body, dict) and "source" in case.body:
        case.body["source"] = contained(case.body["source"], seeds)


def failure_titles(e: BaseException) -> str:
    found = getattr(e, "exceptions", None) or [e]
    return "; ".join(f"{getattr(f, 'title', type(f).__name__)}: {str(f).strip()[:160]}" for f in found)


def operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    # deletions last, so that the seeded records serve the other operations first
    return sorted(found, key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


def test_openapi(fuzz_server: FuzzServer) -> None:
    ops = operations(fuzz_server.url)
    assert len(ops) > 30
    before = TALLY.found()
    with requests.Session() as session:
        for op in ops:
            cases = op.as_strategy(GenerationMode.POSITIVE) | op.as_strategy(GenerationMode.NEGATIVE)

            def check(drawn: tuple[schemathesis.Case, bool], op: Any = op) -> None:
                case, aimed = drawn
                aim(case, fuzz_server.seeds, aimed)
                since = TALLY.mark()
                response = case.call(base_url=fuzz_server.url, session=session, timeout=60)
                problem = ""
                try:
                    case.validate_response(response, checks=CHECKS)
                except (AssertionError, BaseExceptionGroup) as e:  # a schemathesis Failure, or a group
                    problem = failure_titles(e)
                request = describe(
                    op.method.upper(),
                    case.formatted_path,
                    None,
                    None if isinstance(case.body, NotSet) else case.body,
                )
                TALLY.record(API, request, response.status_code, response.content, since, problem)

            run_cases(st.tuples(cases, st.booleans()), budget(API, len(ops)), check)
    assert TALLY.found() == before, "\n".join(TALLY.report())
