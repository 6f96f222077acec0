"""The parameters page in percent: the F1 gates (stored 0-1, as the API and the CLI take them) are shown
and typed in percent like every score on the console, and converted at the form; a bad percentage is a
400 page that saves nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.factories import make_project
from visionloop.core import parameters
from visionloop.core.records.parameters import SPECS
from visionloop.core.services import Services
from visionloop.errors import InvalidInput
from visionloop.web.console.parameter_scale import form_scale, form_text, history_text, parse_form

W = "/console/projects/demo/workflow/parameters"


def _post(client: TestClient, html: str, csrf: str, **typed: str) -> object:
    was = dict(re.findall(r'name="was_([a-z_0-9]+)" value="([^"]*)"', html))
    data = {"csrf_token": csrf, **{f"was_{k}": v for k, v in was.items()}}
    data.update({k: v for k, v in was.items() if not k.endswith("_enabled")})
    return client.post(W, data={**data, **typed})


def test_scores_are_typed_in_percent_and_stored_as_fractions(
    client: TestClient, services: Services, olga: str
) -> None:
    make_project(services, "demo")
    page = client.get(W).text
    assert 'name="min_f1" value="80"' in page and 'name="max_f1_drop" value="5"' in page
    assert 'name="min_confidence" value="50"' in page  # stored in percent already: as it was
    assert "a percentage from 0 to 100; default 80" in page
    r = _post(client, page, olga, min_f1="85", max_f1_drop="2.5")
    assert r.status_code == 303  # type: ignore[attr-defined]
    p = parameters.get_parameters(services, "demo")
    assert (p.min_f1, p.max_f1_drop) == (0.85, 0.025)
    api = client.get("/api/v1/projects/demo/parameters").json()["parameters"]
    assert (api["min_f1"], api["max_f1_drop"]) == (0.85, 0.025)  # the API keeps its scale
    page = client.get(W).text
    assert 'name="min_f1" value="85"' in page and "<td>80%</td><td><strong>85%</strong></td>" in page
    for bad in ("0.9x", "101", "-1", "nan"):
        r = _post(client, page, olga, min_f1=bad)
        assert r.status_code == 400 and "a percentage from 0 to 100" in r.text  # type: ignore[attr-defined]
    assert parameters.get_parameters(services, "demo").min_f1 == 0.85


@pytest.mark.parametrize("typed", ["0", "33.3", "80", "99.99", "100"])
def test_the_form_round_trips(typed: str) -> None:
    spec = SPECS["min_f1"]
    assert form_text(spec, parse_form(spec, typed)) == typed
    assert form_scale(spec).unit == "%" and form_scale(SPECS["min_confidence"]).unit == "%"
    assert form_scale(SPECS["min_untrained_images"]).unit == ""
    assert history_text("min_f1", parse_form(spec, typed)) == f"{typed}%"
    with pytest.raises(InvalidInput):
        parse_form(spec, "1e9")
