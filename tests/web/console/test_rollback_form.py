"""The Runs page's rollback form (issue 18, item 4): its default names the version a rollback without a
target goes to (core.deployments.default_rollback), and it offers nothing that would be refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.workflows.helpers import colour_project, drive, rules, run_jobs
from visionloop.core.retraining import request_check
from visionloop.core.runkinds import RunContext
from visionloop.core.services import Services
from visionloop.core.training import request_training
from visionloop.settings import Settings, load_settings

RUNS = "/console/projects/colours/workflow/runs"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No workflow runner in the app: this test advances the runs itself."""
    return load_settings({"data_dir": str(tmp_path / "var"), "workflow_enabled": False}, environ={})


def _options(html: str) -> list[tuple[str, str]]:
    form = html[html.index('id="rollback-form"') :]
    return re.findall(r'<option value="([^"]*)">([^<]*)</option>', form[: form.index("</select>")])


def test_the_form_offers_only_what_a_rollback_accepts(
    client: TestClient, services: Services, app: FastAPI, olga: str, tmp_path: Path
) -> None:
    colour_project(services, tmp_path)
    rules(services, "colours", auto_training_enabled=True, min_untrained_images=4, min_f1=0.7)
    ctx = RunContext(services, app.state.serving)
    assert drive(ctx, request_check(services, "colours").id).outcome == "deployed"  # v1
    page = client.get(RUNS)
    assert page.status_code == 200 and 'id="rollback-form"' not in page.text
    assert "No other trained version to roll back to." in page.text
    request_training(services, "colours")  # v2: trained, never deployed
    run_jobs(services)
    assert _options(client.get(RUNS).text) == [("v2", "v2")]  # no default: nothing was replaced
    r = client.post(f"{RUNS}/rollback", data={"csrf_token": olga})
    assert r.status_code == 409 and "no earlier deployed version" in r.text
