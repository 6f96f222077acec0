"""Ids in the console's paths beyond SQLite's integers are refused, not a 500 (issue 15, finding 7).
Through a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_project
from tests.servers import serve_in_thread
from tests.web.conftest import sign_in
from visionloop.core.services import Services

PAGES = [
    "/console/projects/p/entries/{}",
    "/console/projects/p/entries/{}/image",
    "/console/projects/p/entries/{}/thumb",
    "/console/projects/p/workflow/detections/{}",
    "/console/projects/p/workflow/detections/{}/image",
    "/console/projects/p/train/jobs/{}",
]


@pytest.mark.parametrize("value", [2**63, 2**64, 0])
def test_console_ids_out_of_range_are_refused(app: FastAPI, services: Services, value: int) -> None:
    make_project(services, "p")
    with serve_in_thread(app) as url, httpx.Client(base_url=url, follow_redirects=False) as web:
        client: Any = web  # sign_in takes any client with TestClient's get and post
        sign_in(client, "olga")
        for page in PAGES:
            r = web.get(page.format(value))
            assert r.status_code in (400, 404, 422), (page, r.status_code)
