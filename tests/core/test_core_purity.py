"""The domain core imports no web, ML, image or database framework."""

import subprocess
import sys

FORBIDDEN = [
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "torch",
    "onnxruntime",
    "PIL",
    "numpy",
    "boto3",
    "click",
    "rich",
    "sqlite3",
]


def test_core_imports_no_framework() -> None:
    code = (
        "import sys, pkgutil, importlib, visionloop.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module(f'visionloop.core.{m.name}')\n"
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"visionloop.core pulled in: {out}"
