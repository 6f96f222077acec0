"""visionloop params show|set|history, visionloop events and visionloop notify … on a data folder in tmp,
with a real webhook receiver for notify deliver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from visionloop.cli import cli
from visionloop.errors import AlreadyExists, InvalidInput, NotFound
from visionloop.workflows.notifications import verify


@pytest.fixture
def run(tmp_path: Path) -> Any:
    data = str(tmp_path / "var")

    def invoke(*args: str, input: str | None = None) -> Result:
        # the webhook receiver listens on 127.0.0.1: allowed with webhook_allow_private
        env = {"VISIONLOOP_WEBHOOK_ALLOW_PRIVATE": "true"}
        return CliRunner().invoke(cli, ["--data-dir", data, *args], input=input, env=env)

    assert invoke("project", "create", "logos").exit_code == 0
    return invoke


def test_params_show_set_history(run: Any) -> None:
    r = run("params", "show", "logos", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["min_confidence"] == 50.0
    r = run("params", "set", "logos", "min_confidence=70", "human_review_enabled=yes", "--json")
    assert r.exit_code == 0, r.output
    changes = json.loads(r.output)
    assert [(c["key"], c["new"]) for c in changes] == [
        ("min_confidence", 70.0),
        ("human_review_enabled", True),
    ]
    assert changes[0]["changed_by"].startswith("cli")
    r = run("params", "set", "logos", "min_confidence=70")
    assert r.exit_code == 0 and "nothing changed" in r.output
    r = run("params", "show", "logos")
    assert "human_review_enabled" in r.output and "true" in r.output
    r = run("params", "history", "logos", "--json")
    assert [c["key"] for c in json.loads(r.output)] == ["human_review_enabled", "min_confidence"]
    r = run("params", "history", "logos", "--key", "min_confidence")
    assert r.exit_code == 0 and "min_confidence" in r.output and "70" in r.output
    r = run("events", "logos", "--type", "parameter_changed", "--json")
    assert [e["payload"]["key"] for e in json.loads(r.output)] == ["min_confidence", "human_review_enabled"]
    r = run("events", "logos", "--limit", "1", "--json")
    assert [e["payload"]["key"] for e in json.loads(r.output)] == ["human_review_enabled"]
    assert run("events", "logos").exit_code == 0


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["min_confidence=high"], InvalidInput, 'min_confidence must be a number from 0 to 100, not "high"'),
        (["min_confidence=101", "min_f1=2"], InvalidInput, "min_confidence must be"),
        (["nope=1"], InvalidInput, "unknown parameter 'nope'"),
        (["min_confidence"], InvalidInput, "is not KEY=VALUE"),
        (["min_f1=0.5", "min_f1=0.6"], InvalidInput, "min_f1 is given twice"),
    ],
)
def test_params_set_refuses_bad_values_and_changes_nothing(
    run: Any, args: list[str], error: type[Exception], message: str
) -> None:
    r = run("params", "set", "logos", *args)
    assert r.exit_code != 0 and isinstance(r.exception, error)
    assert message in str(r.exception)
    assert json.loads(run("params", "history", "logos", "--json").output) == []


def test_unknown_project_and_bad_times(run: Any) -> None:
    assert isinstance(run("params", "show", "nope").exception, NotFound)
    r = run("events", "logos", "--since", "last week")
    assert isinstance(r.exception, InvalidInput) and "--since must be an ISO 8601 time" in str(r.exception)
    r = run("events", "logos", "--type", "trained")
    assert isinstance(r.exception, InvalidInput)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", got
    server.shutdown()
    server.server_close()
    thread.join()


def test_notify_commands(run: Any, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]) -> None:
    url, got = receiver
    secret = "cli-secret-0123456789"
    r = run(
        "notify", "add", "logos", "ops", "--webhook", url, "--secret-stdin", "--json", input=secret + "\n"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["secret"] == secret
    r = run(
        "notify",
        "add",
        "logos",
        "team",
        "--email",
        "a@example.com,b@example.com",
        "--events",
        "training_failed",
    )
    assert r.exit_code == 0 and "team added" in r.output
    r = run("notify", "add", "logos", "gen", "--webhook", url, "--disabled")
    assert r.exit_code == 0 and "secret (shown once):" in r.output
    r = run("notify", "list", "logos", "--json")
    listed = {c["name"]: c for c in json.loads(r.output)}
    assert set(listed) == {"gen", "ops", "team"} and listed["gen"]["enabled"] is False
    assert listed["team"]["addresses"] == ["a@example.com", "b@example.com"]
    assert all("secret" not in c for c in listed.values())
    assert "ops" in run("notify", "list", "logos").output

    assert run("params", "set", "logos", "min_f1=0.9").exit_code == 0  # a parameter_changed event
    r = run("notify", "deliveries", "logos", "--status", "pending", "--json")
    assert [d["channel"] for d in json.loads(r.output)] == ["ops"]
    r = run("notify", "deliver")
    assert r.exit_code == 0 and "1 attempt(s) made" in r.output
    [(headers, body)] = got
    assert verify(secret, body, headers["x-visionloop-signature"])
    assert json.loads(body)["payload"]["key"] == "min_f1"
    r = run("notify", "deliveries", "logos", "--json")
    [d] = json.loads(r.output)
    assert d["status"] == "delivered" and d["attempts"][0]["ok"] is True
    assert "delivered" in run("notify", "deliveries", "logos").output

    r = run("notify", "set", "logos", "gen", "--enable", "--events", "version_deployed,version_rejected")
    assert r.exit_code == 0 and "enabled=True" in r.output
    assert run("notify", "remove", "logos", "gen").exit_code == 0
    assert isinstance(run("notify", "remove", "logos", "gen").exception, NotFound)
    assert isinstance(run("notify", "add", "logos", "ops", "--webhook", url).exception, AlreadyExists)
    r = run("notify", "add", "logos", "x")
    assert isinstance(r.exception, InvalidInput) and "--webhook URL or --email" in str(r.exception)
    r = run("notify", "add", "logos", "x", "--webhook", "ftp://nope")
    assert isinstance(r.exception, InvalidInput)
