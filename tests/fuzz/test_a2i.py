"""Generated requests for the A2I runtime routes (REST-JSON under /human-loops): mutated bodies for
StartHumanLoop and StopHumanLoop, generated query strings for ListHumanLoops, generated loop names in the
paths of DescribeHumanLoop and DeleteHumanLoop, and methods and paths that are no operation. Every answer
must be below 500 and JSON; every error ``{"__type", "message"}`` with the code in ``X-Amzn-ErrorType``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import strategies as st

from tests.fuzz.conftest import LOOP, FuzzServer, Seeds
from tests.fuzz.harness import TALLY, budget, describe, run_cases
from tests.fuzz.mutations import bodies, long_strings, weird_strings

API = "a2i"
Request = tuple[str, str, dict[str, str], bytes]
MAX_URL = 16_000


def loop_names() -> st.SearchStrategy[str]:
    return (
        st.sampled_from((LOOP, "loop-2", "ghost"))
        | st.from_regex(r"\A[a-z0-9](-*[a-z0-9]){0,70}\Z")
        | (weird_strings)
    )


def timestamps() -> st.SearchStrategy[str]:
    return (
        st.sampled_from(("2024-01-01T00:00:00Z", "1700000000", "-1", "1e309", "nan", "9" * 40))
        | weird_strings
    )


def start(seeds: Seeds) -> st.SearchStrategy[Request]:
    content = st.sampled_from(
        (json.dumps({"taskObject": f"s3://{seeds.bucket}/{seeds.image_key}"}), "{}", "not json", "")
    )
    members = {
        "HumanLoopName": loop_names(),
        "FlowDefinitionArn": st.sampled_from((seeds.flow_arn, seeds.flow_arn + "x")) | weird_strings,
        "HumanLoopInput": st.fixed_dictionaries({}, optional={"InputContent": content | long_strings}),
        "DataAttributes": st.fixed_dictionaries(
            {}, optional={"ContentClassifiers": st.lists(st.sampled_from(("FreeOfAdultContent", "X")))}
        ),
    }
    return bodies(members).map(lambda b: ("POST", "/human-loops", {}, b))


def stop(_: Seeds) -> st.SearchStrategy[Request]:
    return bodies({"HumanLoopName": loop_names()}).map(lambda b: ("POST", "/human-loops/stop", {}, b))


def list_loops(seeds: Seeds) -> st.SearchStrategy[Request]:
    query = st.fixed_dictionaries(
        {},
        optional={
            "FlowDefinitionArn": st.sampled_from((seeds.flow_arn,)) | weird_strings,
            "CreationTimeAfter": timestamps(),
            "CreationTimeBefore": timestamps(),
            "SortOrder": st.sampled_from(("Ascending", "Descending", "")) | weird_strings,
            "MaxResults": st.sampled_from(("1", "0", "100", "101", "-1", "1.5", "9" * 30)) | weird_strings,
            "NextToken": st.sampled_from(("", "AAAA")) | weird_strings,
        },
    )
    return query.map(lambda q: ("GET", "/human-loops?" + _query(q), {}, b""))


def by_name(_: Seeds) -> st.SearchStrategy[Request]:
    method = st.sampled_from(("GET", "DELETE"))
    return st.tuples(method, loop_names()).map(lambda m: (m[0], "/human-loops/" + _quote(m[1]), {}, b""))


def unknown(_: Seeds) -> st.SearchStrategy[Request]:
    method = st.sampled_from(("PUT", "PATCH", "POST", "OPTIONS"))
    path = st.sampled_from(
        ("/human-loops/a/b", "/human-loops/stop/x", "/human-loops/%00", "/human-loops/..%2f")
    )
    return st.tuples(method, path, st.binary(max_size=20)).map(lambda m: (m[0], m[1], {}, m[2]))


def _query(q: dict[str, str]) -> str:
    return "&".join(f"{k}={_quote(v)}" for k, v in q.items())


def _quote(text: str) -> str:
    """Percent-encoded UTF-8, lone surrogates included (as the three bytes Python would write)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


ROUTES: dict[str, Callable[[Seeds], st.SearchStrategy[Request]]] = {
    "StartHumanLoop": start,
    "StopHumanLoop": stop,
    "ListHumanLoops": list_loops,
    "DescribeOrDeleteHumanLoop": by_name,
    "NoOperation": unknown,
}


def a2i_problem(r: httpx.Response) -> str:
    try:
        doc: Any = r.json()
    except ValueError:
        return "the body is not JSON"
    if r.status_code >= 400 and not (isinstance(doc, dict) and isinstance(doc.get("__type"), str)):
        return f"not an A2I error body: {r.text[:200]}"
    if r.status_code >= 400 and ("message" not in doc or r.headers.get("x-amzn-errortype") != doc["__type"]):
        return f"error without message or X-Amzn-ErrorType: {r.text[:200]}"
    return ""


@pytest.mark.parametrize("route", ROUTES)
def test_a2i_route(fuzz_server: FuzzServer, route: str) -> None:
    before = TALLY.found()
    headers = st.sampled_from(({"Content-Type": "application/json"}, {}, {"Content-Type": "text/plain"}))
    with httpx.Client(base_url=fuzz_server.url, timeout=60) as client:

        def check(case: tuple[Request, dict[str, str]]) -> None:
            (method, path, _, body), sent_headers = case
            since = TALLY.mark()
            path = path[:MAX_URL]  # httpx sends no longer URL; uvicorn's own limit is lower still
            r = client.request(method, path, content=body, headers=sent_headers)
            request = describe(method, path, sent_headers, body)
            TALLY.record(API, request, r.status_code, r.content, since, a2i_problem(r))

        strategy = st.tuples(ROUTES[route](fuzz_server.seeds), headers)
        run_cases(strategy, budget(API, len(ROUTES)), check)
    assert TALLY.found() == before, "\n".join(TALLY.report())
