"""The continuous-improvement endpoints in-process: parameters (GET, PATCH, history), events, notification
channels and deliveries; and the server's notifier delivering a parameter change to a real webhook
receiver on a free port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import make_project
from visionloop.api.app import create_app
from visionloop.bootstrap import fake_engine
from visionloop.core import events
from visionloop.core.events import EventType
from visionloop.core.services import Services
from visionloop.core.serving import Serving, ServingPolicy
from visionloop.settings import AccessKey, Settings
from visionloop.workflows.inference import ProcessInferenceHost
from visionloop.workflows.notifications import verify

PARAMS = "/api/v1/projects/logos/parameters"
EVENTS = "/api/v1/projects/logos/events"
CHANNELS = "/api/v1/projects/logos/channels"
DELIVERIES = "/api/v1/projects/logos/deliveries"
KEY = AccessKey("AKIDOPS", "ops-secret-0123456789")


def _app(services: Services, settings: Settings) -> Any:
    make_project(services, "logos")
    serving = Serving(ProcessInferenceHost(fake_engine, threads=1), ServingPolicy())
    return create_app(services, settings, serving)


@pytest.fixture
def client(services: Services, settings: Settings) -> Iterator[TestClient]:
    # the webhooks here go to 127.0.0.1, a loopback address: allowed with webhook_allow_private
    settings = settings.replace(webhook_allow_private=True)
    with TestClient(_app(services, settings), raise_server_exceptions=False) as c:
        yield c


def error(r: Any) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


def test_get_and_patch_parameters(client: TestClient) -> None:
    got = client.get(PARAMS).json()
    assert got["project"] == "logos"
    assert got["parameters"]["min_confidence"] == 50.0 and got["parameters"]["human_review_enabled"] is False
    r = client.patch(PARAMS, json={"min_confidence": 70, "auto_training_enabled": True, "min_f1": 0.8})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["parameters"]["min_confidence"] == 70.0 and body["parameters"]["auto_training_enabled"] is True
    )
    assert [(c["key"], c["old"], c["new"], c["changed_by"]) for c in body["changes"]] == [
        ("min_confidence", 50.0, 70.0, "api"),
        ("auto_training_enabled", False, True, "api"),
    ]
    assert client.get(PARAMS).json()["parameters"] == body["parameters"]
    history = client.get(PARAMS + "/history").json()["changes"]
    assert [c["key"] for c in history] == ["auto_training_enabled", "min_confidence"]
    assert set(history[0]) == {"id", "key", "old", "new", "changed_by", "changed_at"}
    only = client.get(PARAMS + "/history", params={"key": "min_confidence", "limit": 1}).json()["changes"]
    assert [c["new"] for c in only] == [70.0]
    changed = client.get(EVENTS, params={"type": "parameter_changed"}).json()["events"]
    assert [e["payload"]["key"] for e in changed] == ["min_confidence", "auto_training_enabled"]


@pytest.mark.parametrize(
    ("body", "status", "code", "bad_keys"),
    [
        ({"min_confidence": 170}, 400, "InvalidInput", {"min_confidence"}),
        (
            {"min_confidence": 60, "human_review_enabled": "yes"},
            400,
            "InvalidInput",
            {"human_review_enabled"},
        ),
        ({"min_f1": -1, "nope": 3}, 400, "InvalidInput", {"min_f1", "nope"}),
        ({"training_poll_minutes": 1.5}, 400, "InvalidInput", {"training_poll_minutes"}),
        ({}, 400, "InvalidInput", None),
        ([["min_f1", 0.5]], 422, "ValidationError", None),
        ("min_f1=0.5", 422, "ValidationError", None),
    ],
)
def test_bad_patches_change_nothing(
    client: TestClient, body: Any, status: int, code: str, bad_keys: set[str] | None
) -> None:
    r = client.patch(PARAMS, json=body)
    assert r.status_code == status, r.text
    assert error(r)["code"] == code
    if bad_keys is not None:
        assert set(error(r)["details"]["errors"]) == bad_keys
        for key in bad_keys:
            assert key in error(r)["message"]
    assert client.get(PARAMS + "/history").json()["changes"] == []
    assert client.get(PARAMS).json()["parameters"]["min_confidence"] == 50.0


def test_a_body_that_is_not_json(client: TestClient) -> None:
    r = client.patch(PARAMS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and error(r)["code"] == "ValidationError"


def test_unknown_project_and_bad_queries(client: TestClient) -> None:
    for path in ("/api/v1/projects/nope/parameters", "/api/v1/projects/nope/events"):
        r = client.get(path)
        assert r.status_code == 404 and error(r)["code"] == "NotFound"
    assert client.patch("/api/v1/projects/nope/parameters", json={"min_f1": 0.5}).status_code == 404
    for params, status in (
        ({"type": "trained"}, 400),
        ({"since": "yesterday"}, 400),
        ({"limit": 0}, 422),
        ({"limit": 5000}, 422),
        ({"after_id": -1}, 422),
        ({"after_id": 2**70}, 422),
    ):
        r = client.get(EVENTS, params=params)
        assert r.status_code == status, (params, r.text)
    assert client.get(PARAMS + "/history", params={"key": "nope"}).status_code == 400
    assert client.get(PARAMS + "/history", params={"offset": 2**70}).status_code == 422


def test_events_are_listed_with_filters(client: TestClient, services: Services) -> None:
    for kind in (EventType.TRAINING_STARTED, EventType.TRAINING_COMPLETED, EventType.VERSION_DEPLOYED):
        events.publish(services, "logos", kind, {"version": "v1"})
    listed = client.get(EVENTS).json()["events"]
    assert [e["type"] for e in listed] == ["training_started", "training_completed", "version_deployed"]
    assert listed[0]["project"] == "logos" and listed[0]["payload"] == {"version": "v1"}
    after = client.get(EVENTS, params={"after_id": listed[0]["id"], "limit": 1}).json()["events"]
    assert [e["id"] for e in after] == [listed[1]["id"]]
    since = client.get(EVENTS, params={"since": listed[2]["created_at"]}).json()["events"]
    assert [e["id"] for e in since] == [listed[2]["id"]]
    naive = client.get(EVENTS, params={"since": "2000-01-01T00:00:00"}).json()["events"]
    assert len(naive) == 3
    assert client.get(EVENTS, params={"since": "2000-01-01T00:00:00Z", "type": ""}).status_code == 200


def test_channels_crud_and_errors(client: TestClient) -> None:
    r = client.post(CHANNELS, json={"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert len(made["secret"]) >= 32 and made["events"][0] == "parameter_changed"
    assert "detection" not in made["events"]
    assert "secret" not in client.get(CHANNELS + "/ops").json()
    assert [c["name"] for c in client.get(CHANNELS).json()["channels"]] == ["ops"]
    assert "secret" not in client.get(CHANNELS).json()["channels"][0]
    r = client.post(CHANNELS, json={"name": "team", "kind": "email", "addresses": ["a@example.com"]})
    assert r.status_code == 201 and "secret" not in r.json()
    taken = {"name": "ops", "kind": "email", "addresses": ["a@b.c"]}
    assert client.post(CHANNELS, json=taken).status_code == 409
    r = client.patch(CHANNELS + "/ops", json={"enabled": False, "events": ["version_deployed"]})
    assert r.json()["enabled"] is False and r.json()["events"] == ["version_deployed"]
    for bad, status in (
        ({"name": "x", "kind": "sms", "url": "http://a/"}, 400),
        ({"name": "x", "kind": "webhook", "url": "file:///etc/passwd"}, 400),
        ({"name": "x", "kind": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}, 400),
        ({"name": "x", "kind": "webhook", "url": "http://a/", "events": ["nope"]}, 400),
        ({"name": "x", "kind": "webhook", "url": "http://a/", "secret": "short"}, 400),
        ({"name": "x", "kind": "email", "addresses": ["nobody"]}, 400),
        ({"name": "x", "kind": "webhook", "url": "http://a/", "enabled": "yes"}, 422),
        ({"kind": "webhook", "url": "http://a/"}, 422),
        ({"name": "x", "kind": "email", "addresses": "a@b.c"}, 422),
    ):
        r = client.post(CHANNELS, json=bad)
        assert r.status_code == status, (bad, r.text)
    assert client.patch(CHANNELS + "/ops", json={"events": []}).status_code == 400
    assert client.patch(CHANNELS + "/nope", json={"enabled": True}).status_code == 404
    assert client.get(CHANNELS + "/Bad%20Name").status_code == 400
    assert client.delete(CHANNELS + "/ops").status_code == 204
    assert client.delete(CHANNELS + "/ops").status_code == 404
    assert client.get("/api/v1/projects/nope/channels").status_code == 404


def test_deliveries_and_attempts(client: TestClient, services: Services) -> None:
    client.post(CHANNELS, json={"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/never"})
    assert client.post(CHANNELS + "/ops", json={}).status_code == 405  # wrong method: not a crash
    events.publish(services, "logos", EventType.TRAINING_FAILED, {"error": "x"})
    listed = client.get(DELIVERIES).json()["deliveries"]
    assert len(listed) == 1 and listed[0]["channel"] == "ops"
    assert listed[0]["event"]["type"] == "training_failed"
    one = client.get(f"{DELIVERIES}/{listed[0]['id']}").json()
    assert one["id"] == listed[0]["id"] and isinstance(one["attempts"], list)
    assert client.get(DELIVERIES, params={"status": "lost"}).status_code == 400
    assert client.get(DELIVERIES, params={"channel": "nope"}).status_code == 404
    assert client.get(f"{DELIVERIES}/999999").status_code == 404
    assert (
        client.get(f"{DELIVERIES}/{2**70}").status_code == 422
    )  # beyond SQLite's integers: refused as invalid
    assert client.get(f"{DELIVERIES}/abc").status_code == 422


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events", got
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_server_delivers_a_parameter_change_to_a_webhook(
    services: Services, settings: Settings, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, got = receiver
    app = _app(services, settings.replace(access_keys=(KEY,), webhook_allow_private=True))
    auth = {"Authorization": f"Bearer {KEY.secret}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get(PARAMS).status_code == 401
        channel = {"name": "ops", "kind": "webhook", "url": url, "secret": "x" * 20}
        made = client.post(CHANNELS, json=channel, headers=auth).json()
        assert made["secret"] == "x" * 20
        r = client.patch(PARAMS, json={"human_review_enabled": True}, headers=auth)
        assert r.json()["changes"][0]["changed_by"] == "api:AKIDOPS"
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        [(headers, body)] = got
        assert verify("x" * 20, body, headers["x-visionloop-signature"])
        doc = json.loads(body)
        assert doc["type"] == "parameter_changed" and doc["project"] == "logos"
        assert doc["payload"] == {
            "key": "human_review_enabled",
            "old": False,
            "new": True,
            "changed_by": "api:AKIDOPS",
        }
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [d] = client.get(DELIVERIES, headers=auth).json()["deliveries"]
            if d["status"] == "delivered":
                break
            time.sleep(0.02)
        assert d["status"] == "delivered" and d["attempts"] == 1
        [attempt] = client.get(f"{DELIVERIES}/{d['id']}", headers=auth).json()["attempts"]
        assert attempt["ok"] and attempt["status_code"] == 204
