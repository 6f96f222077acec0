"""Text stored before the APIs refused lone surrogates (issue 15, finding 7): the pages and answers that
show it render it (as U+FFFD) instead of failing until it is overwritten. Through a real server."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.servers import serve_in_thread
from tests.web.conftest import review_project, sign_in
from visionloop.core import review
from visionloop.core.records.review import FlowSettings
from visionloop.core.services import Services

BAD = "Which fruit? \ud800"


def test_a_stored_lone_surrogate_does_not_break_the_flow_or_the_queue(
    app: FastAPI, services: Services
) -> None:
    review_project(services, "fruit", n=1)
    flow = review.find_flow(services, "fruit")
    assert flow is not None
    services.repo.update_flow(flow.id, FlowSettings(instructions=BAD), services.clock.now())
    assert services.repo.get_flow_by_id(flow.id).settings.instructions == BAD  # stored as it came
    with serve_in_thread(app) as url, httpx.Client(base_url=url, follow_redirects=False) as web:
        r = web.get("/api/v1/projects/fruit/flow")
        assert r.status_code == 200, r.text
        assert r.json()["instructions"] == "Which fruit? \ufffd"
        client: Any = web  # sign_in takes any client with TestClient's get and post
        sign_in(client)
        page = web.get("/review/queue?project=fruit")
        assert page.status_code == 200, page.text
        assert "Which fruit? \ufffd" in page.text
