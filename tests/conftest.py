from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.bootstrap import build_services
from visionloop.core.services import Services
from visionloop.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"data_dir": str(tmp_path / "var")}, environ={})


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.repo.close()


def shared_dataset(name: str) -> Path:
    """A folder of ../shared/datasets, or a skip with the reason when it is absent."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared datasets are not on this machine")
    return path
