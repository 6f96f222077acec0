"""Hypothesis strategies for hostile request bodies: a valid document for an operation (drawn from its
members' strategies) mutated by wrong types, missing and extra members, huge and non-finite numbers, lone
surrogates, long strings, deep nesting; or a body that is not a JSON object at all (empty, random bytes,
truncated, not UTF-8)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

Members = Mapping[str, st.SearchStrategy[Any]]

LONG = (300, 2_000, 70_000)
HUGE_NUMBERS: tuple[Any, ...] = (2**31, 2**63, -(2**63) - 1, 2**64, 10**30, 1e308, -1e308, 5e-324)
NON_FINITE = (float("nan"), float("inf"), float("-inf"))
BAD_BASE64 = ("!!!!", "abc", "a", "====", "YWJj\n", "ñ", "AAAA" * 3 + "=A")

lone_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
long_strings = st.sampled_from(LONG).map(lambda n: "x" * n)
weird_strings = st.one_of(
    st.text(max_size=30),
    lone_surrogates,
    st.text(max_size=5).flatmap(lambda s: lone_surrogates.map(lambda c: s + c)),
    long_strings,
    st.sampled_from(("", " ", "\x00", "../../etc/passwd", "%00", "null", "arn:aws:", "💥" * 50)),
    st.sampled_from(BAD_BASE64),
)
weird_numbers = st.one_of(
    st.integers(),
    st.sampled_from(HUGE_NUMBERS + NON_FINITE),
    st.floats(),
    st.integers(min_value=-(2**70), max_value=2**70),
)
scalars = st.one_of(st.none(), st.booleans(), weird_numbers, weird_strings)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    """``depth`` lists inside each other (built without recursion)."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


deep_values = st.sampled_from((50, 900, 5_000, 100_000)).map(nested)


def valid_documents(members: Members) -> st.SearchStrategy[dict[str, Any]]:
    """Documents with each member present or not (so required members go missing too)."""
    return st.fixed_dictionaries({}, optional=dict(members))


@st.composite
def mutated(draw: st.DrawFn, members: Members) -> dict[str, Any]:
    """A valid document changed in one to three places."""
    doc = draw(valid_documents(members))
    for _ in range(draw(st.integers(0, 3))):
        names = sorted(set(doc) | set(members))
        kind = draw(st.sampled_from(("replace", "drop", "extra", "deep", "wrap")))
        name = draw(st.sampled_from(names)) if names else "Unknown"
        if kind == "replace":
            doc[name] = draw(json_values)
        elif kind == "drop":
            doc.pop(name, None)
        elif kind == "extra":
            doc[draw(st.text(max_size=12) | lone_surrogates)] = draw(json_values)
        elif kind == "deep":
            doc[name] = draw(deep_values)
        elif name in doc:  # the right value, one level too deep: in a list or an object
            doc[name] = draw(st.sampled_from(([doc[name]], {"value": doc[name]})))
    return doc


def encode(doc: Any) -> bytes:
    """JSON as Python writes it: NaN and Infinity as bare words, lone surrogates as \\u escapes, and a
    nesting too deep for the encoder written out by hand."""
    try:
        return json.dumps(doc, allow_nan=True).encode()
    except RecursionError:
        depth = 0
        while isinstance(doc, list) and doc:
            doc, depth = doc[0], depth + 1
        return b"[" * depth + b"[]" + b"]" * depth


not_json = st.one_of(
    st.just(b""),
    st.just(b"   "),
    st.binary(max_size=200),
    st.sampled_from((b"{", b'{"a":', b"[]", b"null", b"42", b'"x"', b"{'a': 1}", b"\xff\xfe{}", b"\x00")),
    st.just(b"[" * 100_000),
    st.text(max_size=50).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


def bodies(members: Members) -> st.SearchStrategy[bytes]:
    """Mostly mutated documents, some untouched ones, some bodies that are not a JSON object."""
    return st.one_of(
        valid_documents(members).map(encode),
        mutated(members).map(encode),
        mutated(members).map(encode),
        not_json,
    )
