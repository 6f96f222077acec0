"""The console page tests' app (an operator, serving on the fake engine's units) and a trained project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import make_project, write_folder_dataset
from tests.web.conftest import PASSWORD, sign_in
from tests.web.console.data import train_with_evaluation
from visionloop.api.app import create_app
from visionloop.bootstrap import build_serving, fake_engine
from visionloop.core.accounts import Accounts, Role, add_reviewer
from visionloop.core.datasets import import_folder
from visionloop.core.entities import ModelVersion
from visionloop.core.services import Services
from visionloop.settings import Settings


@pytest.fixture
def app(services: Services, settings: Settings, accounts: Accounts) -> Iterator[FastAPI]:
    """The app with an operator olga, serving with the fake colour engine's inference units."""
    add_reviewer(accounts, "olga", PASSWORD, Role.OPERATOR)
    serving = build_serving(settings, engine_factory=fake_engine)
    yield create_app(services, settings, serving, accounts)
    serving.host.close()


@pytest.fixture
def logos(services: Services, tmp_path: Path) -> list[ModelVersion]:
    """Project logos with 3 labels (10 images each, 2 per label go to TEST) and two trained versions."""
    make_project(services, "logos")
    folder = write_folder_dataset(tmp_path / "imgs", {"amazon_logo": 10, "aws_logo": 10, "other": 10})
    assert import_folder(services, "logos", str(folder)).imported == 30
    return [train_with_evaluation(services, "logos", "v1"), train_with_evaluation(services, "logos", "v2", 1)]


@pytest.fixture
def olga(client: TestClient) -> str:
    """Signs the client in as the operator olga; her CSRF token."""
    return sign_in(client, "olga")
