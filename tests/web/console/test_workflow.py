"""The operators' workflow pages in-process: parameters (validated together, recorded with who changed
them, never overwriting a change made meanwhile), runs (check now, rollback refused without a previous
deployment, a run's steps), notification channels (add, secret shown once, off/on, remove, deliveries);
CSRF on every form, reviewers refused, every failure a page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import make_project
from tests.web.conftest import sign_in
from visionloop.bootstrap import build_services
from visionloop.core import notifications, parameters, runs
from visionloop.core.events import EventType, publish
from visionloop.core.records.parameters import PARAMETERS
from visionloop.core.records.runs import ACTIVE
from visionloop.core.runkinds import RunContext, queue_run
from visionloop.core.services import Services
from visionloop.settings import Settings

W = "/console/projects/demo/workflow"


def _was(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="was_([a-z_0-9]+)" value="([^"]*)"', html))


def _form(html: str, csrf: str, **changes: str | bool) -> dict[str, str]:
    """The parameters form as a browser would post it, with ``changes`` typed in."""
    was = _was(html)
    data = {"csrf_token": csrf, **{f"was_{k}": v for k, v in was.items()}}
    for key, value in was.items():
        if key.endswith("_enabled"):
            on = changes.get(key, value == "true")
            if on is True or on == "true":
                data[key] = "true"
        else:
            data[key] = str(changes.get(key, value))
    return data


def test_parameters_are_shown_edited_and_recorded(client: TestClient, services: Services, olga: str) -> None:
    make_project(services, "demo")
    page = client.get(f"{W}/parameters")
    assert page.status_code == 200
    assert set(_was(page.text)) == {p.key for p in PARAMETERS}
    assert 'aria-current="page">Workflow' in page.text and "No change yet" in page.text
    r = client.post(
        f"{W}/parameters", data=_form(page.text, olga, min_confidence="70", human_review_enabled=True)
    )
    assert r.status_code == 303 and r.headers["location"].endswith("notice=saved")
    p = parameters.get_parameters(services, "demo")
    assert p.min_confidence == 70.0 and p.human_review_enabled is True and p.min_f1 == 0.8
    history = parameters.parameter_history(services, "demo")
    assert {(c.key, c.changed_by) for c in history} == {
        ("min_confidence", "olga"),
        ("human_review_enabled", "olga"),
    }
    page = client.get(r.headers["location"])
    assert "Saved." in page.text and "<td>Minimum confidence</td>" in page.text and "olga" in page.text
    shown = re.sub(r"<[^>]+>", "", page.text)  # what a person reads: no parameter keys
    assert "min_confidence" not in shown and "human_review_enabled" not in shown
    # the same form again: nothing to change
    r = client.post(f"{W}/parameters", data=_form(page.text, olga))
    assert r.headers["location"].endswith("notice=unchanged")
    # a checkbox turned off
    r = client.post(f"{W}/parameters", data=_form(page.text, olga, human_review_enabled=False))
    assert r.status_code == 303 and parameters.get_parameters(services, "demo").human_review_enabled is False


def test_bad_values_save_nothing(client: TestClient, services: Services, olga: str) -> None:
    make_project(services, "demo")
    page = client.get(f"{W}/parameters")
    data = _form(page.text, olga, min_confidence="170", min_f1="90", training_poll_minutes="often")
    r = client.post(f"{W}/parameters", data=data)
    assert r.status_code == 400 and "Nothing was saved" in r.text
    assert r.text.count('class="error"') == 2 and 'value="170"' in r.text and 'value="often"' in r.text
    assert parameters.get_parameters(services, "demo").min_f1 == 0.8  # the good one was not saved either
    assert parameters.parameter_history(services, "demo") == []


def test_a_change_made_meanwhile_is_not_overwritten(
    client: TestClient, services: Services, olga: str
) -> None:
    make_project(services, "demo")
    page = client.get(f"{W}/parameters")
    parameters.update_parameters(services, "demo", {"min_f1": 0.9}, changed_by="cli")
    r = client.post(f"{W}/parameters", data=_form(page.text, olga, min_f1="70"))
    assert r.status_code == 409 and "Minimum F1 changed since" in r.text
    assert parameters.get_parameters(services, "demo").min_f1 == 0.9
    # another key edited from the same old page is fine: min_f1 untouched keeps the value set meanwhile
    r = client.post(f"{W}/parameters", data=_form(page.text, olga, min_untrained_images="3"))
    assert r.status_code == 303
    p = parameters.get_parameters(services, "demo")
    assert (p.min_f1, p.min_untrained_images) == (0.9, 3)


def test_runs_check_now_and_rollback(client: TestClient, services: Services, olga: str) -> None:
    make_project(services, "demo")
    page = client.get(f"{W}/runs")
    assert page.status_code == 200 and "No run" in page.text and "No version is deployed" in page.text
    r = client.post(f"{W}/runs/check", data={"csrf_token": olga})
    assert r.status_code == 303
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    run = runs.get_run(services, "demo", run_id)
    assert run.trigger == "console" and run.input == {"requested_by": "olga"}
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and f"Run {run_id}" in page.text
    if run.status in ACTIVE:
        assert "every 2s" in page.text
        r = client.post(f"{W}/runs/check", data={"csrf_token": olga})
        assert r.status_code == 409 and "wait for it to end" in r.text
    fragment = client.get(f"{W}/runs/{run_id}?fragment=1")
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="run"' in fragment.text
    page = client.get(f"{W}/runs")
    assert f'href="{W}/runs/{run_id}"' in page.text and "console" in page.text
    page = client.get(f"{W}/runs?status=bogus")
    assert page.status_code == 200
    r = client.post(f"{W}/runs/rollback", data={"csrf_token": olga})
    assert r.status_code == 409 and "no earlier deployed version" in r.text
    r = client.post(f"{W}/runs/check", data={})
    assert r.status_code == 403
    assert client.get(f"{W}/runs/999").status_code == 404


def test_a_run_with_steps(client: TestClient, services: Services, olga: str, app: object) -> None:
    make_project(services, "demo")
    run = queue_run(services, "demo", "training_check", "console")
    ctx = RunContext(services, app.state.serving)  # type: ignore[attr-defined]
    while runs.get_run(services, "demo", run.id).status in ACTIVE:
        runs.advance_run(ctx, runs.get_run(services, "demo", run.id))
    page = client.get(f"{W}/runs/{run.id}")
    assert page.status_code == 200 and "every 2s" not in page.text
    assert "<strong>check</strong>" in page.text and 'id="outcome">skipped' in page.text
    assert "automatic training is off" in page.text and "<dt>automatic training</dt><dd>no</dd>" in page.text
    assert "Counted the new labelled images" in page.text and "<pre>" not in page.text, "no raw JSON"


def test_notification_channels(client: TestClient, services: Services, settings: Settings, olga: str) -> None:
    make_project(services, "demo")
    n = f"{W}/notifications"
    page = client.get(n)
    assert page.status_code == 200 and "No channel yet" in page.text
    defaults = {t.value for t in notifications.DEFAULT_EVENTS}
    assert all(f'value="{e}" checked' in page.text for e in defaults)
    form = {"csrf_token": olga, "channel": "ops", "kind": "webhook", "url": "https://example.org/hook"}
    r = client.post(f"{n}/channels", data={**form, "event": ["training_completed", "version_deployed"]})
    assert r.status_code == 200 and 'id="secret"' in r.text
    channel = notifications.get_channel(services, "demo", "ops")
    assert channel.secret and channel.secret in r.text
    assert channel.events == (EventType.TRAINING_COMPLETED, EventType.VERSION_DEPLOYED)
    assert channel.secret not in client.get(n).text  # shown once
    # an e-mail channel with a bad address: the form again, with the reason and what was typed
    r = client.post(
        f"{n}/channels",
        data={
            "csrf_token": olga,
            "channel": "mail",
            "kind": "email",
            "addresses": "ops@, x",
            "event": "training_failed",
        },
    )
    assert r.status_code == 400 and "invalid e-mail address" in r.text and 'value="ops@, x"' in r.text
    mail = {"csrf_token": olga, "channel": "mail", "kind": "email", "addresses": "ops@example.org"}
    r = client.post(f"{n}/channels", data=mail)  # every event unticked
    assert r.status_code == 400 and "at least one event type" in r.text
    r = client.post(f"{n}/channels", data={**mail, "event": sorted(defaults)})
    assert r.status_code == 303
    assert notifications.get_channel(services, "demo", "mail").events == notifications.DEFAULT_EVENTS
    r = client.post(f"{n}/channels", data={**form, "event": "training_failed"})
    assert r.status_code == 409  # the name is taken
    metadata = {**form, "channel": "meta", "url": "http://169.254.169.254/latest/meta-data/"}
    r = client.post(f"{n}/channels", data={**metadata, "event": "training_failed"})
    assert r.status_code == 400 and "link-local or cloud metadata address" in r.text
    # off and on
    r = client.post(f"{n}/channels/ops/enable", data={"csrf_token": olga, "enabled": "false"})
    assert r.status_code == 303 and not notifications.get_channel(services, "demo", "ops").enabled
    assert "is off" in client.get(r.headers["location"]).text
    client.post(f"{n}/channels/ops/enable", data={"csrf_token": olga, "enabled": "true"})
    # a delivery shows with its event. Published as another process would (its own Services): the
    # server's notifier, woken at once by its own events, sees it only at its next look (5 s), so the
    # page shows it before any attempt (which fails fast here: example.org does not resolve)
    other = build_services(settings)
    publish(other, other.repo.get_project("demo"), EventType.TRAINING_COMPLETED, {"version": "v1"})
    other.repo.close()
    page = client.get(n)
    assert "training completed" in page.text and "pending" in page.text
    delivery = notifications.list_deliveries(services, "demo")[0]
    page = client.get(f"{n}/deliveries/{delivery.id}")
    assert (
        page.status_code == 200
        and "Not tried yet" in page.text
        and "&#34;version&#34;: &#34;v1&#34;" in page.text
    )
    assert client.get(f"{n}/deliveries/99999").status_code == 404
    assert client.get(f"{n}?status=failed&channel=nope").status_code == 200
    # remove, with CSRF only
    assert client.post(f"{n}/channels/ops/remove", data={}).status_code == 403
    r = client.post(f"{n}/channels/ops/remove", data={"csrf_token": olga})
    assert r.status_code == 303 and [c.name for c in notifications.list_channels(services, "demo")] == [
        "mail"
    ]
    assert client.post(f"{n}/channels/ops/remove", data={"csrf_token": olga}).status_code == 404


def test_reviewers_are_refused(client: TestClient, services: Services, app: object) -> None:
    make_project(services, "demo")
    bob = sign_in(client, "bob")
    for path in ("parameters", "runs", "notifications"):
        r = client.get(f"{W}/{path}")
        assert r.status_code == 403 and "Operators only" in r.text
    r = client.post(f"{W}/parameters", data={"csrf_token": bob, "was_min_f1": "0.8", "min_f1": "0.1"})
    assert r.status_code == 403 and parameters.get_parameters(services, "demo").min_f1 == 0.8
    r = client.post(
        f"{W}/notifications/channels", data={"csrf_token": bob, "channel": "x", "url": "http://x.org"}
    )
    assert r.status_code == 403 and notifications.list_channels(services, "demo") == []
