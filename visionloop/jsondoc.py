"""Strict JSON documents from the wire, shared by the three APIs (native, AWS JSON 1.1, A2I).

Python's json module accepts what nothing downstream can handle: lone UTF-16 surrogates (``"\\ud800"``,
which SQLite and every UTF-8 encoder refuse), ``NaN`` and ``Infinity``, ``1e400`` (read as infinity),
integers beyond SQLite's 64 bits, and nesting deep enough to exhaust the interpreter's stack. ``loads``
and ``check`` refuse them with a domain error naming the member, so each wire layer answers its own 4xx:

    MalformedJson   nested deeper than MAX_DEPTH, or text with a lone surrogate
      NotJson       not JSON at all
    OutOfRange      a number that is not finite or not within a signed 64-bit integer
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from visionloop.errors import InvalidInput

MAX_DEPTH = 64  # our documents are a few levels deep; json's own limit is the interpreter's stack
MAX_INT = 2**63 - 1  # SQLite's INTEGER
SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair: Python text may hold one, UTF-8 not


class MalformedJson(InvalidInput):
    """The body is not a JSON document this server can take."""


class NotJson(MalformedJson):
    """The body is not JSON at all."""


class OutOfRange(InvalidInput):
    """A number is not finite, or beyond a signed 64-bit integer."""


def loads(data: bytes | str) -> Any:
    """The document in ``data``, checked by ``check``."""
    try:
        doc = json.loads(data)
    except RecursionError:
        raise MalformedJson(f"the JSON document is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError):
        raise NotJson("the request body is not valid JSON") from None
    check(doc)
    return doc


def check(doc: Any) -> None:
    """Refuse lone surrogates, nesting over MAX_DEPTH and out-of-range numbers anywhere in ``doc`` (walked
    without recursion, so a deep document cannot exhaust the stack here)."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if SURROGATE.search(value):
                raise MalformedJson(f"{_where(path)} holds a lone UTF-16 surrogate, which is not text")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -MAX_INT - 1 <= value <= MAX_INT:
                raise OutOfRange(f"{_where(path)}: the integer is beyond a signed 64-bit integer")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise OutOfRange(f"{_where(path)}: the number is not finite")
        elif depth >= MAX_DEPTH:
            raise MalformedJson(f"the JSON document is nested more than {MAX_DEPTH} levels deep")
        elif isinstance(value, dict):
            for key, item in value.items():
                if SURROGATE.search(key):
                    raise MalformedJson(f"a member name in {_where(path)} holds a lone UTF-16 surrogate")
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def _where(path: str) -> str:
    shown = path if len(path) <= 200 else path[:200] + "…"
    return repr(shown) if shown else "the document"
