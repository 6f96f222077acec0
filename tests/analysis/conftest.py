"""The analysers are loaded once for the whole test session: the registry shares one instance per kind
per process, so the API, AWS and CLI tests reuse the models these fixtures load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_dataset


@pytest.fixture(scope="session")
def labels_analyser() -> Any:
    from visionloop.analysis.registry import create_analyser

    analyser = create_analyser("labels")
    analyser.warm_up()
    return analyser


@pytest.fixture(scope="session")
def people_photo() -> bytes:
    """A photo of four people (faces dataset, deepface test images, MIT)."""
    path: Path = shared_dataset("faces") / "person_11" / "img31.jpg"
    return path.read_bytes()
