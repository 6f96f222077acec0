from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.bootstrap import build_services
from visionloop.cli.app import console, err_console
from visionloop.core.services import Services
from visionloop.settings import Settings, load_settings
from visionloop.storage.s3 import S3Options

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's tables 200 columns wide in every test, so no cell wraps or is cut short: a pytest-xdist
    worker has no terminal, and its consoles rendered 80 columns (a face's attributes wrapped)."""
    monkeypatch.setattr(console, "_width", 200)
    monkeypatch.setattr(err_console, "_width", 200)


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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server (a real S3 protocol server) running in this process until the session
    ends: the S3 store's tests and the tests that run the product on S3 share it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_options(s3_endpoint: str) -> S3Options:
    """Options of a fresh, empty server (moto's reset API drops every bucket)."""
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST")).close()
    return S3Options(s3_endpoint, "us-east-1", "testing", "testing")
