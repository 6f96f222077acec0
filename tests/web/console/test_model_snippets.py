"""The model version page's "Use this model": the ARN, the endpoint URL and code to copy. The boto3 code
as the page shows it runs against the server (a real one on a free port, the page fetched from it): it
starts the model, detects the labels of a photo, and stops it. The AWS CLI lines name the same ARN; with
access keys the code holds placeholders, never the server's key."""

from __future__ import annotations

import contextlib
import html
import io
import os
import re
from pathlib import Path

import boto3
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import image_bytes
from tests.servers import serve_in_thread
from tests.web.conftest import PASSWORD, sign_in
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.services import Services
from visionloop.web.console.snippets import model_snippets

PAGE = "/console/projects/logos/versions/v1"


def _block(page: str, ident: str) -> str:
    found = re.search(rf'id="{ident}"><summary>[^<]*</summary><pre><code>(.*?)</code></pre>', page, re.S)
    assert found is not None, ident
    return html.unescape(found.group(1))


def test_the_boto3_code_on_the_page_runs_against_the_server(
    app: FastAPI, services: Services, logos: list[ModelVersion], tmp_path: Path
) -> None:
    with serve_in_thread(app) as url, TestClient(app, base_url=url, follow_redirects=False) as client:
        sign_in(client, "olga", PASSWORD)
        page = client.get(PAGE).text
        arn = html.unescape(re.search(r'id="model-arn" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        assert f'id="endpoint-url" value="{url}"' in page
        code = _block(page, "snippet-boto3")
        project_arn = re.search(r'ProjectArn="([^"]+)"', code).group(1)  # type: ignore[union-attr]
        rek = boto3.client(
            "rekognition",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        described = rek.describe_project_versions(ProjectArn=project_arn, VersionNames=["v1"])
        assert [v["ProjectVersionArn"] for v in described["ProjectVersionDescriptions"]] == [arn]
        cli = _block(page, "snippet-cli")
        assert f"--endpoint-url {url}" in cli and f"--project-version-arn {arn}" in cli
        assert "fileb://photo.jpg" in cli

        (tmp_path / "photo.jpg").write_bytes(image_bytes(color=(200, 30, 30)))
        code = code.replace(".wait(", '.wait(WaiterConfig={"Delay": 1, "MaxAttempts": 60}, ')  # not 30 s
        out = io.StringIO()
        here = os.getcwd()
        os.chdir(tmp_path)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, "snippet", "exec"), {})  # noqa: S102 (the page's code, as a user runs it)
        finally:
            os.chdir(here)
        assert re.fullmatch(r"(\S+ [\d.]+ %\n)+", out.getvalue()), out.getvalue()  # one line a label found
        v1 = services.repo.get_version_by_id(logos[0].id)
        assert v1.status in (VersionStatus.STOPPING, VersionStatus.STOPPED)


def test_with_access_keys_the_code_holds_placeholders(services: Services, logos: list[ModelVersion]) -> None:
    project = services.repo.get_project("logos")
    shown = model_snippets("http://h:1/", "eu-west-1", "210987654321", project, logos[0], keys_needed=True)
    assert shown.endpoint_url == "http://h:1" and shown.version_arn.startswith(
        "arn:aws:rekognition:eu-west-1:210987654321:project/logos/version/v1/"
    )
    assert (
        'aws_access_key_id="YOUR_ACCESS_KEY_ID"' in shown.boto3
        and "AWS_ACCESS_KEY_ID=YOUR_ACCESS_KEY_ID" in shown.aws_cli
    )
