"""``visionloop workflow check|rollback|runs|show|status``: the CLI queues runs (the server's runner
executes them; here the test advances them in-process with the colour engine) and shows their history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.workflows.helpers import colour_project, drive, rules
from visionloop.bootstrap import build_services, fake_engine
from visionloop.cli import cli
from visionloop.core.runkinds import RunContext
from visionloop.core.services import Services
from visionloop.core.serving import Serving
from visionloop.core.training import TrainingOptions, request_training
from visionloop.settings import load_settings
from visionloop.workflows.inference import ProcessInferenceHost


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def svc(data: Path) -> Iterator[Services]:
    services = build_services(load_settings({"data_dir": str(data)}, environ={}))
    yield services
    services.repo.close()


@pytest.fixture
def ctx(svc: Services) -> Iterator[RunContext]:
    host = ProcessInferenceHost(fake_engine, threads=1)
    yield RunContext(svc, Serving(host))
    host.close()


def run(data: Path, *args: str, code: int = 0) -> str:
    """The command's output, and the message of the error it stopped with (main() prints it)."""
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, (result.output, result.exception)
    failure = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.output + (str(failure) if failure else "")


def test_check_show_runs_status_and_rollback(
    data: Path, svc: Services, ctx: RunContext, tmp_path: Path
) -> None:
    colour_project(svc, tmp_path)
    rules(svc, "colours", auto_training_enabled=True, min_untrained_images=4)
    out = run(data, "workflow", "check", "colours")
    assert "run 1 is QUEUED: the server's workflow runner executes it" in out
    assert "is QUEUED; wait for it to end" in run(data, "workflow", "check", "colours", code=1)
    out = run(data, "workflow", "check", "colours", "--wait", "--timeout", "0.2", code=1)
    assert "is QUEUED; wait for it" in out  # still the first one
    assert drive(ctx, 1).outcome == "deployed"

    runs = json.loads(run(data, "workflow", "runs", "colours", "--json"))
    assert [(r["id"], r["status"], r["outcome"], r["trigger"]) for r in runs] == [
        (1, "SUCCEEDED", "deployed", "manual")
    ]
    table = run(data, "workflow", "runs", "colours")
    assert "training_check" in table and "deployed" in table and "v1 serves project colours" in table
    shown = json.loads(run(data, "workflow", "show", "colours", "1", "--json"))
    assert [s["name"] for s in shown["steps"]][:3] == ["check", "train", "evaluate"]
    text = run(data, "workflow", "show", "colours", "1")
    assert "SUCCEEDED deployed" in text and "stop_previous" in text
    assert "run 9 does not exist" in run(data, "workflow", "show", "colours", "9", code=1)

    status = json.loads(run(data, "workflow", "status", "colours", "--json"))
    assert status["serving"] == "v1" and status["active_run"] is None
    assert [d["version"] for d in status["deployments"]] == ["v1"]
    assert "serving version: v1" in run(data, "workflow", "status", "colours")

    out = run(data, "workflow", "rollback", "colours", code=1)
    assert "no earlier deployed version to roll back to" in out
    assert "does not exist" in run(data, "workflow", "runs", "ghost", code=1)
    assert "unknown run status" in run(data, "workflow", "runs", "colours", "--status", "x", code=1)


def test_rollback_to_a_named_version_and_wait(
    data: Path, svc: Services, ctx: RunContext, tmp_path: Path
) -> None:
    colour_project(svc, tmp_path)
    rules(svc, "colours", auto_training_enabled=True, min_untrained_images=4)
    run(data, "workflow", "check", "colours")
    assert drive(ctx, 1).outcome == "deployed"
    request_training(svc, "colours", TrainingOptions(version_name="manual"))
    drive(ctx, 1)  # runs the queued training job
    queued = json.loads(run(data, "workflow", "rollback", "colours", "--to", "manual", "--json"))
    assert queued["kind"] == "rollback" and queued["input"] == {"to_version": "manual"}
    done = drive(ctx, queued["id"])
    assert done.outcome == "rolled_back" and done.output["version"] == "manual"
    out = run(data, "workflow", "rollback", "colours", "--wait", "--timeout", "0.3", "--json")
    assert json.loads(out)["status"] == "QUEUED"  # no server ran it within the wait
