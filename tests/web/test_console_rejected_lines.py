"""The console's dataset page lists the manifest lines an import rejected, with their reasons, and deletes
one (in-process, signed in as an operator)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.factories import classification_line, image_bytes, make_project, unique_colour
from tests.web.conftest import PASSWORD, sign_in
from visionloop.core.accounts import Accounts, Role, add_reviewer
from visionloop.core.services import Services


@pytest.fixture
def token(client: TestClient, accounts: Accounts) -> str:
    add_reviewer(accounts, "olga", PASSWORD, Role.OPERATOR)
    return sign_in(client, "olga")


def test_the_dataset_page_lists_rejected_lines_and_deletes_one(
    client: TestClient, services: Services, token: str
) -> None:
    make_project(services, "logos")
    services.buckets.create_bucket("data")
    services.buckets.put("data", "img/0.jpg", image_bytes(color=unique_colour(7)))
    text = "\n".join(
        [
            classification_line("s3://data/img/0.jpg", "apple"),
            classification_line("s3://data/img/missing.jpg", "pear"),
            "{not json",
        ]
    )
    r = client.post(
        "/console/projects/logos/datasets/train/manifest",
        data={"csrf_token": token},
        files={"manifest": ("train.manifest", text.encode(), "application/octet-stream")},
    )
    assert r.status_code == 200
    page = client.get("/console/projects/logos/datasets/train").text
    assert "2 rejected manifest lines" in page
    assert "s3://data/img/missing.jpg" in page and "ERROR_INVALID_SOURCE_REF" in page
    assert "ERROR_INVALID_JSON_LINE" in page and "{not json" in page
    assert "rejected manifest line" not in client.get("/console/projects/logos/datasets/test").text

    first = re.search(r"/datasets/train/rejected/(\d+)/delete", page)
    assert first is not None
    url = f"/console/projects/logos/datasets/train/rejected/{first.group(1)}/delete"
    r = client.post(url, data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "The rejected line was deleted." in page and "1 rejected manifest line:" in page
    assert client.post(url, data={"csrf_token": token}).status_code == 404
    assert client.post(url, data={"csrf_token": "wrong"}).status_code in (400, 403)
