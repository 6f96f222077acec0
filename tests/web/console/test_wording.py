"""The console in words a person reads: saving parameters that may deploy a model asks first, run steps
and outcomes are sentences and tables (no keys, no JSON), the backbone shown is the one training used."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import make_project
from visionloop.core import parameters
from visionloop.core.entities import ModelVersion
from visionloop.core.services import Services
from visionloop.web.console.wording import backbone_name, facts, plain, step_sentence

W = "/console/projects/demo/workflow"


def form(html: str, csrf: str, **changes: str | bool) -> dict[str, str]:
    """The parameters form as a browser posts it (checkboxes only when ticked), ``changes`` typed in."""
    was = dict(re.findall(r'name="was_([a-z_0-9]+)" value="([^"]*)"', html))
    shown = dict(re.findall(r'name="([a-z_0-9]+)" value="([^"]*)"', html))
    ticked = set(re.findall(r'name="([a-z_0-9]+)" value="true" checked', html))
    data = {"csrf_token": csrf, **{f"was_{k}": v for k, v in was.items()}}
    for key in was:
        wanted = changes.get(key, key in ticked if key.endswith("_enabled") else shown[key])
        if key.endswith("_enabled"):
            if wanted is True or wanted == "true":
                data[key] = "true"
        else:
            data[key] = str(wanted)
    return data


def test_saving_parameters_that_may_deploy_a_model_asks_first(
    client: TestClient, services: Services, olga: str
) -> None:
    make_project(services, "demo")
    page = client.get(f"{W}/parameters")
    r = client.post(f"{W}/parameters", data=form(page.text, olga, auto_training_enabled=True))
    assert r.status_code == 200 and 'id="confirm-deploy"' in r.text and "This may deploy a model" in r.text
    assert "runs a training check at once" in r.text and "(no version serves yet)" in r.text
    assert "0 new labelled images" in r.text
    assert parameters.get_parameters(services, "demo").auto_training_enabled is False, "nothing saved yet"
    assert parameters.parameter_history(services, "demo") == []
    # the form came back as typed: confirming posts the same values
    again = form(r.text, olga)
    assert again.get("auto_training_enabled") == "true"
    r = client.post(f"{W}/parameters", data={**again, "confirm": "deploy"})
    assert r.status_code == 303 and r.headers["location"].endswith("notice=saved")
    assert parameters.get_parameters(services, "demo").auto_training_enabled is True
    # with automatic training on, a new period runs the check at once too: asked again
    page = client.get(f"{W}/parameters")
    r = client.post(f"{W}/parameters", data=form(page.text, olga, training_poll_minutes="5"))
    assert r.status_code == 200 and 'id="confirm-deploy"' in r.text and "every 5 minutes" in r.text
    # a change that runs no check is saved at once
    r = client.post(f"{W}/parameters", data=form(page.text, olga, min_confidence="60"))
    assert r.status_code == 303 and parameters.get_parameters(services, "demo").min_confidence == 60.0
    # turning automatic training off deploys nothing
    page = client.get(f"{W}/parameters")
    r = client.post(f"{W}/parameters", data=form(page.text, olga, auto_training_enabled=False))
    assert r.status_code == 303 and parameters.get_parameters(services, "demo").auto_training_enabled is False


def test_stored_codes_and_keys_in_words() -> None:
    assert plain("rolled_back") == "rolled back" and plain("training_check") == "a training check"
    assert plain("automatic training is off (auto_training_enabled)") == (
        "automatic training is off (“Automatic training”)"
    )
    assert plain("F1 0.700 is below min_f1 0.8") == "F1 0.700 is below “Minimum F1” 0.8"
    assert step_sentence("stop_previous") == "Stopped the version that served before."
    found = facts(
        {
            "version": "v2",
            "version_id": 7,
            "deploy_reason": "rollback",
            "training_seconds": 12.345,
            "gate": {
                "passed": False,
                "labels": [
                    {"label": "apple", "support": 5, "champion_f1": 0.9, "challenger_f1": 0.7, "drop": 0.2}
                ],
            },
        }
    )
    assert [f.name for f in found] == [
        "Version",
        "Deployed by",
        "Training time",
        "Comparison with the serving version",
    ]
    assert [f.text for f in found[:3]] == ["v2", "a rollback", "12.3 s"]
    gate = found[3].facts
    assert (
        gate[0].text == "no"
        and gate[1].columns[0] == "Label"
        and gate[1].rows == (("apple", "5", "90.0%", "70.0%", "20.0 points"),)  # scores in percent
    )


def test_the_backbone_shown_is_the_one_training_used(
    client: TestClient, services: Services, logos: list[ModelVersion], olga: str
) -> None:
    v1, v2 = logos
    services.repo.update_version(v1.id, params={**v1.params, "backbones": ["efficientnet-lite2"]})
    services.repo.update_version(v2.id, params={**v2.params, "backbones": ["efficientnet-lite0-int8"]})
    page = client.get("/console/projects/logos/versions/v1")
    assert page.status_code == 200 and "Backbone EfficientNet-Lite2 ·" in page.text
    assert "Backbone auto" not in page.text
    rows = client.get("/console/projects/logos/versions").text
    assert "<td>EfficientNet-Lite2</td>" in rows and "<td>EfficientNet-Lite0 (INT8)</td>" in rows
    jobs = client.get("/console/projects/logos/train").text
    assert "backbone EfficientNet-Lite2" in jobs and "backbone auto" not in jobs
    assert ">EfficientNet-Lite2</option>" in jobs


def test_backbone_names() -> None:
    assert backbone_name("efficientnet-lite2") == "EfficientNet-Lite2"
    assert backbone_name("efficientnet-lite3-int8") == "EfficientNet-Lite3 (INT8)"
    assert backbone_name("hf:org/model") == "org/model (Hugging Face)"


def test_the_sign_in_page_is_branded_visionloop(client: TestClient) -> None:
    page = client.get("/review/sign-in?next=/console/")
    assert page.status_code == 200 and "Sign in to the console" in page.text
    assert '<a class="brand" href="/">visionloop</a>' in page.text and "<span>review</span>" not in page.text


def test_a_refused_value_is_explained_without_keys(client: TestClient, services: Services, olga: str) -> None:
    make_project(services, "demo")
    page = client.get(f"{W}/parameters")
    r = client.post(f"{W}/parameters", data=form(page.text, olga, min_confidence="170"))
    assert r.status_code == 400 and "Nothing was saved" in r.text and "Minimum confidence" in r.text
    assert "min_confidence" not in re.sub(r"<[^>]+>", "", r.text)
