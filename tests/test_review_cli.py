"""visionloop review flow|loops|agreement on a data folder in tmp."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.factories import image_bytes
from visionloop.bootstrap import build_services
from visionloop.cli import cli
from visionloop.core import review
from visionloop.settings import load_settings


def test_review_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    run = CliRunner().invoke
    assert run(cli, ["--data-dir", data, "project", "create", "logos"]).exit_code == 0
    r = run(cli, ["--data-dir", data, "review", "flow", "logos", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["arn"] == "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/logos"
    r = run(
        cli,
        ["--data-dir", data, "review", "flow", "logos", "--min-confidence", "65", "--reviewers", "2",
         "--labels", "amazon, aws", "--lease-minutes", "5", "--order", "lowest_margin", "--json"],
    )  # fmt: skip
    flow = json.loads(r.output)
    assert flow["min_confidence"] == 65 and flow["reviewers_per_item"] == 2 and flow["lease_seconds"] == 300
    assert (
        flow["choices"] == ["amazon", "aws", "None of the above"] and flow["queue_order"] == "lowest_margin"
    )
    r = run(cli, ["--data-dir", data, "review", "flow", "logos", "--no-rule", "--json"])
    assert json.loads(r.output)["min_confidence"] is None and json.loads(r.output)["reviewers_per_item"] == 2
    r = run(cli, ["--data-dir", data, "review", "flow", "logos", "--reviewers", "0"])
    assert r.exit_code != 0 and "reviewers_per_item" in str(r.exception)

    svc = build_services(load_settings({"data_dir": data}, environ={}))
    try:
        flow_rec = review.get_flow(svc, "logos")
        loop = review.start_loop(svc, flow_rec, "one", {"x": 1}, image=image_bytes())
        for who in ("a", "b"):
            review.next_item(svc, who)
            review.submit_answer(svc, loop, who, "aws")
    finally:
        svc.repo.close()
    r = run(cli, ["--data-dir", data, "review", "loops", "logos", "--json"])
    [listed] = json.loads(r.output)
    assert listed["name"] == "one" and listed["status"] == "Completed" and listed["human_answer"] == "aws"
    assert "one" in run(cli, ["--data-dir", data, "review", "loops", "logos"]).output
    r = run(cli, ["--data-dir", data, "review", "agreement", "logos", "--json"])
    assert {a["label"]: a["human_said"] for a in json.loads(r.output)}["aws"] == 1
    assert "aws" in run(cli, ["--data-dir", data, "review", "agreement", "logos"]).output
    assert run(cli, ["--data-dir", data, "review", "loops", "nope"]).exit_code != 0
