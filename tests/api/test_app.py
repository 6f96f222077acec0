"""The native API in-process (httpx over ASGI), and once through a real server on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.core.test_projects import version_in
from tests.servers import serve_in_thread, serve_process
from visionloop.api.app import create_app
from visionloop.core.entities import VersionStatus
from visionloop.core.services import Services
from visionloop.settings import Settings


@pytest.fixture
def client(services: Services, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(services, settings), raise_server_exceptions=False) as c:
        yield c


def test_healthz_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    assert "/api/v1/projects" in client.get("/openapi.json").json()["paths"]


def test_projects_crud_and_error_envelope(client: TestClient) -> None:
    r = client.post("/api/v1/projects", json={"name": "fruit", "task": "multi_label"})
    assert r.status_code == 201 and r.json()["task"] == "multi_label"
    r = client.post("/api/v1/projects", json={"name": "fruit"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "AlreadyExists"
    r = client.post("/api/v1/projects", json={"name": "bad name"})
    assert r.status_code == 400 and "invalid project name" in r.json()["error"]["message"]
    r = client.post("/api/v1/projects", json={"task": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "ValidationError"
    r = client.post("/api/v1/projects", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert client.get("/api/v1/projects/ghost").status_code == 404
    assert client.get("/api/v1/projects/fruit/stats").json()["images"] == 0
    assert [p["name"] for p in client.get("/api/v1/projects").json()["projects"]] == ["fruit"]
    assert client.delete("/api/v1/projects/fruit").status_code == 204
    assert client.get("/api/v1/projects/fruit").status_code == 404


def test_real_server(tmp_path: Path) -> None:
    with serve_process(tmp_path / "var") as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        r = httpx.post(f"{url}/api/v1/projects", json={"name": "p"})
        assert r.status_code == 201
        assert (tmp_path / "var" / "visionloop.db").exists()
    (log,) = tmp_path.glob("server-*.log")
    assert "authentication is off" in log.read_text()


def test_delete_refused_while_a_version_runs_or_trains(services: Services, settings: Settings) -> None:
    """Native DELETE goes through the same rule as DeleteProject and the console: 409, nothing lost."""
    with serve_in_thread(create_app(services, settings)) as url:
        assert httpx.post(f"{url}/api/v1/projects", json={"name": "logos"}).status_code == 201
        for status in (VersionStatus.TRAINING_IN_PROGRESS, VersionStatus.RUNNING):
            version = version_in(services, "logos", status, name=status.value.lower())
            r = httpx.delete(f"{url}/api/v1/projects/logos")
            assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict"
            assert f"is {status.value}: stop it" in r.json()["error"]["message"]
            assert httpx.get(f"{url}/api/v1/projects/logos").status_code == 200
            services.repo.update_version(version.id, status=VersionStatus.STOPPED)
        assert httpx.delete(f"{url}/api/v1/projects/logos").status_code == 204
        assert httpx.get(f"{url}/api/v1/projects/logos").status_code == 404
        r = httpx.post(f"{url}/api/v1/projects", json={"name": ".."})
        assert r.status_code == 400 and "reserved" in r.json()["error"]["message"]


def test_the_app_wires_http_around_one_server(services: Services, settings: Settings) -> None:
    """Everything is built before the first request (bootstrap.build_server): serving with its review
    hook and detection log, the AWS backend; the lifespan starts the background group and stops it."""
    from visionloop.workflows.detection_log import DetectionLog
    from visionloop.workflows.review_hook import ReviewHook

    app = create_app(services, settings)
    server = app.state.server
    assert isinstance(server.serving.review_hook, ReviewHook)
    assert isinstance(server.serving.detection_log, DetectionLog)
    assert app.state.rekognition is server.rekognition and server.rekognition.analysis is server.analysis
    names = [name for name, _ in server.background.components]
    assert names.index("detection log") < names.index("inference units") < names.index("notifier")
    assert "worker processes" not in names  # only `visionloop serve` owns workers
    assert server.background.started == []
    with TestClient(app) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert server.background.started == names  # started by the lifespan
    assert server.background.started == []  # and stopped at its end
