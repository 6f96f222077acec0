"""The core's import graph: records and ports at the bottom, use cases above them, nothing upward.

Built with ``ast`` from the source, so imports inside functions and under ``TYPE_CHECKING`` count too:
a deferred import hides a cycle from Python, not from this test."""

from __future__ import annotations

import ast
from pathlib import Path

import visionloop

PACKAGE = Path(visionloop.__file__).parent
CORE = "visionloop.core"
# packages above the core: the core never imports them
UPWARD = ("api", "web", "aws", "a2i", "sagemaker", "cli", "storage", "engines", "workflows", "analysis")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` names in an import statement (for ``from m import n``: m and m.n)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def core_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in sorted((PACKAGE / "core").rglob("*.py"))}
    return {name: {t for t in _imports(path) if t in modules and t != name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def test_the_graph_sees_the_core() -> None:
    graph = core_graph()
    seen = {"visionloop.core.ports", "visionloop.core.records.review", "visionloop.core.review"}
    assert seen | {"visionloop.core.review.loops"} <= set(graph)  # subpackages' modules too
    assert "visionloop.core.records.review" in graph["visionloop.core.ports"]


def test_no_import_cycle_in_core() -> None:
    assert cycles(core_graph()) == []


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_records_and_ports_are_the_bottom() -> None:
    """Records import only records, entities and the standard library (and visionloop.errors);
    ports only records and entities."""
    graph = core_graph()
    bottom = {f"{CORE}.entities", f"{CORE}.records"}
    for name, targets in graph.items():
        if name.startswith(f"{CORE}.records") or name == f"{CORE}.ports":
            above = {t for t in targets if t not in bottom and not t.startswith(f"{CORE}.records.")}
            assert not above, f"{name} imports {sorted(above)}"


def test_core_imports_nothing_above_it() -> None:
    upward = []
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        for target in _imports(path):
            parts = target.split(".")
            if parts[0] == "visionloop" and len(parts) > 1 and parts[1] in UPWARD:
                upward.append(f"{_module_name(path)} -> {target}")
    assert upward == []


def test_interfaces_call_use_cases_not_the_repository() -> None:
    """The native API, the AWS and A2I APIs, the CLI, the web pages and the background workflows reach
    storage only through core's use cases, so a rule lives in core once: no ``.repo`` attribute
    (``svc.repo.*``, or ``svc.repo`` kept in a name) in their source."""
    found = []
    for package in ("api", "aws", "a2i", "sagemaker", "cli", "web", "workflows"):
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr == "repo":
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert found == []
