"""Storage is an adapter below the use cases: it imports from the core only records, entities, ports and
the key checks (modules that import nothing of the core's use cases), never a use-case module."""

from __future__ import annotations

import ast
from pathlib import Path

import visionloop.storage

STORAGE = Path(visionloop.storage.__file__).parent
ALLOWED = tuple(f"visionloop.core.{name}" for name in ("records", "entities", "ports", "keys"))


def _core_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("visionloop.core")}


def test_storage_imports_no_use_case_module() -> None:
    found = [
        f"{path.relative_to(STORAGE.parent)} -> {name}"
        for path in sorted(STORAGE.rglob("*.py"))
        for name in _core_imports(path)
        if not any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED)
    ]
    assert found == []
