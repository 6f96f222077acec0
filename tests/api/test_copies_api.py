"""The native copy and project-policy endpoints in-process, over a version trained with the colour engine:
a copy into another project with its own artifact, the policies' CRUD with revisions, a copy refused by
the source project's policies (403), and the error envelope of each bad request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories import make_project, write_folder_dataset
from visionloop.api.app import create_app
from visionloop.core import datasets
from visionloop.core.entities import TaskType
from visionloop.core.services import Services
from visionloop.core.training import TrainingOptions, get_version, request_training, run_training_job
from visionloop.engines.fake import ColourEngine
from visionloop.settings import Settings

V1 = "/api/v1/projects/colours/versions/v1"
SOURCE_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/colours/version/v1/"


def allow(resource: str) -> dict[str, object]:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "rekognition:CopyProjectVersion",
        "Resource": resource,
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.fixture
def client(services: Services, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    make_project(services, "colours")
    root = write_folder_dataset(tmp_path / "d", {"red": 5, "blue": 5})
    datasets.import_folder(services, "colours", str(root))
    request_training(services, "colours", TrainingOptions(version_name="v1"))
    job = services.repo.claim_job(services.clock.now())
    assert job is not None
    run_training_job(services, ColourEngine(), job, "us-east-1", "123456789012")
    make_project(services, "other", TaskType.DETECTION)  # blank: it takes the copied model's task
    with TestClient(create_app(services, settings), raise_server_exceptions=False) as c:
        yield c


def test_copy_into_another_project(client: TestClient, services: Services) -> None:
    r = client.post(f"{V1}/copy", json={"destination": "other", "version_name": "c1"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["copied_from"].startswith(SOURCE_ARN)
    source, copy = get_version(services, "colours", "v1"), get_version(services, "other", "c1")
    assert body["version"]["name"] == "c1" and body["version"]["status"] == "TRAINING_COMPLETED"
    assert (copy.f1, copy.thresholds, copy.evaluation) == (source.f1, source.thresholds, source.evaluation)
    assert copy.artifact_key != source.artifact_key and copy.artifact_checksum == source.artifact_checksum
    assert services.repo.get_project("other").task is TaskType.CLASSIFICATION
    described = client.get("/api/v1/projects/other/versions/c1").json()
    assert described["copied_from"] == body["copied_from"] and described["f1"] == source.f1
    assert client.get(V1).json()["copied_from"] is None
    again = client.post(f"{V1}/copy", json={"destination": "other", "version_name": "c1"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "AlreadyExists"
    for payload, status in (
        ({"destination": "nope", "version_name": "c2"}, 404),
        ({"destination": "other", "version_name": "bad name"}, 400),
        ({"destination": "other"}, 422),
    ):
        assert client.post(f"{V1}/copy", json=payload).status_code == status
    assert (
        client.post(
            "/api/v1/projects/colours/versions/v9/copy", json={"destination": "other", "version_name": "c2"}
        ).status_code
        == 404
    )


def test_policies_and_a_refused_copy(client: TestClient) -> None:
    base = "/api/v1/projects/colours/policies"
    assert client.get(base).json() == {"policies": []}
    r = client.put(f"{base}/share", json={"document": allow("arn:*:project/elsewhere/*")})
    assert r.status_code == 200, r.text
    first = r.json()
    assert json.loads(first["document"]) == allow("arn:*:project/elsewhere/*")
    denied = client.post(f"{V1}/copy", json={"destination": "other", "version_name": "c1"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "CopyDenied"
    same = client.post(f"{V1}/copy", json={"destination": "colours", "version_name": "v1-copy"})
    assert same.status_code == 201  # within the project the policies do not apply

    taken = client.put(f"{base}/share", json={"document": json.dumps(allow("*"))})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "AlreadyExists"
    stale = client.put(f"{base}/share", json={"document": allow("*"), "revision_id": "ab" * 16})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "RevisionMismatch"
    bad = client.put(f"{base}/other", json={"document": "{not json"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "MalformedPolicy"
    r = client.put(f"{base}/share", json={"document": allow("*"), "revision_id": first["revision_id"]})
    assert r.status_code == 200 and r.json()["revision_id"] != first["revision_id"]
    allowed = client.post(f"{V1}/copy", json={"destination": "other", "version_name": "c1"})
    assert allowed.status_code == 201, allowed.text

    assert client.delete(f"{base}/share", params={"revision_id": first["revision_id"]}).status_code == 409
    assert client.delete(f"{base}/share").status_code == 204
    assert client.delete(f"{base}/share").status_code == 404
    assert client.get("/api/v1/projects/nope/policies").status_code == 404


def test_a_model_is_not_copied_into_a_project_of_another_task(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    make_project(services, "multi", TaskType.MULTI_LABEL)
    root = write_folder_dataset(tmp_path / "m", {"red": 2})
    datasets.import_folder(services, "multi", str(root))
    assert services.repo.get_project("multi").task is TaskType.MULTI_LABEL
    r = client.post(f"{V1}/copy", json={"destination": "multi", "version_name": "c1"})
    assert r.status_code == 400 and "multi_label project" in r.json()["error"]["message"]
