"""What the fuzz tests share: the case budget (``VISIONLOOP_FUZZ_CASES``, a few hundred by default, 10,000
in ``make fuzz``), a Hypothesis runner that neither shrinks nor stores examples, and the tally of requests
and 5xx answers per API, each 5xx with the last line of the server's traceback (read from its log)."""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisWarning

T = TypeVar("T")

DEFAULT_CASES = 300
CASES = int(os.environ.get("VISIONLOOP_FUZZ_CASES", DEFAULT_CASES))
# the default (CI) run is derandomized, so it fails the same way every time; `make fuzz` explores
DERANDOMIZE = "VISIONLOOP_FUZZ_CASES" not in os.environ
SHARE = {"openapi": 0.4, "aws-json": 0.4, "a2i": 0.2}


def budget(api: str, operations: int) -> int:
    """Cases per operation of ``api``: its share of the total, spread evenly, 5% over (an operation with
    few distinct requests, like GET /healthz, runs out of new ones before its count)."""
    return max(2, math.ceil(CASES * SHARE[api] * 1.05 / operations))


def run_cases(strategy: st.SearchStrategy[T], n: int, check: Callable[[T], None]) -> None:
    """Call ``check`` on ``n`` values of ``strategy`` (fewer when the strategy runs out of new ones)."""

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: T) -> None:
        check(value)

    with warnings.catch_warnings():  # long strings and deep nesting are the point here
        warnings.filterwarnings("ignore", "Generating overly large repr", HypothesisWarning)
        run()


@dataclass(frozen=True)
class Finding:
    api: str
    request: str
    status: int
    detail: str  # the last line of the server's traceback, else the start of the body


class ErrorLog(logging.Handler):
    """Keeps the tracebacks the server logs (uvicorn's and our own ``log.error(..., exc_info=...)``)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            self.lines.append(f"{type(exc).__name__}: {exc}"[:300])
        else:
            self.lines.append(record.getMessage()[:300])


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    server_errors: list[Finding] = field(default_factory=list)
    violations: list[Finding] = field(default_factory=list)
    log: ErrorLog = field(default_factory=ErrorLog)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def capture(self) -> Iterator[None]:
        loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error")]
        for lg in loggers:
            lg.addHandler(self.log)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeHandler(self.log)

    def mark(self) -> int:
        return len(self.log.lines)

    def record(self, api: str, request: str, status: int, body: bytes, since: int, problem: str = "") -> None:
        """Count one request; keep it when it got a 5xx or broke the API's contract (``problem``)."""
        with self.lock:
            self.cases[api] += 1
            if status >= 500:
                logged = self.log.lines[since:]
                detail = logged[-1] if logged else body[:300].decode("utf-8", "replace")
                self.server_errors.append(Finding(api, request[:600], status, detail))
            elif problem:
                self.violations.append(Finding(api, request[:600], status, problem))

    def distinct(self, findings: list[Finding]) -> list[tuple[Finding, int]]:
        """One finding per (API, request line, detail), with how many requests hit it."""
        seen: Counter[tuple[str, str, str]] = Counter()
        first: dict[tuple[str, str, str], Finding] = {}
        for f in findings:
            key = (f.api, f.request.split(" headers=")[0][:80], f.detail)
            seen[key] += 1
            first.setdefault(key, f)
        return [(first[k], n) for k, n in seen.items()]

    def found(self) -> int:
        """How many 5xx answers and contract violations so far."""
        return len(self.server_errors) + len(self.violations)

    def report(self) -> list[str]:
        lines = [
            "fuzz cases: "
            + ", ".join(f"{api} {self.cases[api]}" for api in SHARE)
            + f"; total {sum(self.cases[api] for api in SHARE)}; 5xx: {len(self.server_errors)}; "
            + f"contract violations: {len(self.violations)}"
        ]
        for label, findings in (("5xx", self.server_errors), ("violation", self.violations)):
            for f, n in self.distinct(findings):
                lines.append(f"  {label} x{n} [{f.api}] {f.status} {f.request}\n      -> {f.detail}")
        return lines


TALLY = Tally()


def describe(method: str, path: str, headers: dict[str, str] | None, body: Any) -> str:
    shown = body if isinstance(body, bytes | str) or body is None else repr(body)
    text = repr(shown[:160] if isinstance(shown, bytes | str) else shown)[:200]
    return f"{method} {path} headers={headers or {}} body={text}"
