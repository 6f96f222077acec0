"""Renaming and merging a label from the dataset page, through the app: the form is on the page, a
rename and a merge relabel training and test images and say how many, and a refusal (no such label, an
empty or unchanged name, a version training) is a page with its status and changes nothing."""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient

from visionloop.core.entities import DatasetType, ModelVersion
from visionloop.core.services import Services
from visionloop.core.training import request_training

URL = "/console/projects/logos/labels/rename"
BACK = "/console/projects/logos/datasets/test?label=other"


def _labels(svc: Services) -> Counter[tuple[str, ...]]:
    p = svc.repo.get_project("logos")
    out: Counter[tuple[str, ...]] = Counter()
    for kind in DatasetType:
        ds = svc.repo.find_dataset(p.id, kind)
        if ds is not None:
            out.update(e.labels for e in svc.repo.list_entries(ds.id))
    return out


def test_rename_then_merge_from_the_dataset_page(
    client: TestClient, olga: str, services: Services, logos: list[ModelVersion]
) -> None:
    page = client.get("/console/projects/logos/datasets/train")
    assert 'id="rename-label"' in page.text and f'action="{URL}"' in page.text
    r = client.post(URL, data={"csrf_token": olga, "old": "other", "new": "misc", "back": BACK})
    assert r.status_code == 303 and r.headers["location"].startswith(BACK + "&notice=renamed&n=10")
    assert "The label was renamed on 10 images." in client.get(r.headers["location"]).text
    assert _labels(services) == Counter({("amazon_logo",): 10, ("aws_logo",): 10, ("misc",): 10})

    r = client.post(URL, data={"csrf_token": olga, "old": "aws_logo", "new": "amazon_logo"})
    assert r.status_code == 303 and "notice=merged&n=10" in r.headers["location"]
    assert r.headers["location"].startswith("/console/projects/logos/datasets/train")
    assert _labels(services) == Counter({("amazon_logo",): 20, ("misc",): 10})


def test_refusals_are_pages_with_their_status_and_change_nothing(
    client: TestClient, olga: str, services: Services, logos: list[ModelVersion]
) -> None:
    before = _labels(services)
    for old, new, status, words in [
        ("wolf", "dog", 404, "no label"),
        ("other", "  ", 400, "label is empty"),
        ("other", "other", 400, "own name"),
    ]:
        r = client.post(URL, data={"csrf_token": olga, "old": old, "new": new})
        assert r.status_code == status and words in r.text, (old, new)
    request_training(services, "logos")
    r = client.post(URL, data={"csrf_token": olga, "old": "other", "new": "misc"})
    assert r.status_code == 409 and "is training" in r.text
    assert _labels(services) == before
    r = client.post(URL, data={"old": "other", "new": "misc"})  # no CSRF token
    assert r.status_code in (400, 403) and _labels(services) == before
