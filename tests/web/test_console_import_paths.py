"""The console's manifest import reads what an HTTP import may: a bucket, or a file inside the
import_roots folders (none here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories import make_project
from tests.web.conftest import PASSWORD, sign_in
from visionloop.core.accounts import Accounts, Role, add_reviewer
from visionloop.core.services import Services

URL = "/console/projects/logos/datasets/train/manifest"


@pytest.fixture
def token(client: TestClient, accounts: Accounts, services: Services) -> str:
    make_project(services, "logos")
    add_reviewer(accounts, "olga", PASSWORD, Role.OPERATOR)
    return sign_in(client, "olga")


def test_a_manifest_path_on_the_server_is_refused_without_import_roots(
    client: TestClient, token: str, tmp_path: Path
) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:not-for-your-eyes\n" * 3)
    for location in (str(secret), "/dev/zero", str(tmp_path)):
        r = client.post(URL, data={"csrf_token": token, "location": location})
        assert r.status_code == 400 and "import_roots" in r.text, location
        assert "not-for-your-eyes" not in r.text and "3 lines" not in r.text
