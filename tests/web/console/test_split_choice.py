"""The Train page shows the automatic split before training (per label, with its warnings) and lets the
operator choose it or keep the datasets as they are; the split made is the one shown."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import add_labelled_images, make_project
from visionloop.core.entities import DatasetType
from visionloop.core.services import Services
from visionloop.core.splitting import split_dataset


def fill(svc: Services, counts: dict[str, int], project: str = "fruit") -> None:
    make_project(svc, project)
    add_labelled_images(svc, project, counts)


def counts(svc: Services, kind: DatasetType, project: str = "fruit") -> int:
    dataset = svc.repo.find_dataset(svc.repo.get_project(project).id, kind)
    return svc.repo.count_entries(dataset.id) if dataset else 0


def preview_rows(html: str) -> dict[str, tuple[int, int]]:
    table = html[html.index('id="split-preview"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<tr><td>([^<]+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td></tr>', table)
    return {label: (int(train), int(test)) for label, train, test in rows}


def test_the_split_is_shown_before_training_and_is_the_one_made(
    client: TestClient, services: Services, olga: str
) -> None:
    fill(services, {"apple": 12, "pear": 6})
    page = client.get("/console/projects/fruit/train")
    assert page.status_code == 200 and 'id="split"' in page.text
    assert 'name="split" value="auto" checked' in page.text and 'name="split" value="keep"' in page.text
    rows = preview_rows(page.text)
    assert set(rows) == {"apple", "pear"} and all(test >= 1 for _, test in rows.values())
    moved = sum(test for _, test in rows.values())
    assert f"move {moved} of the training images to TEST" in page.text
    assert "label &#39;pear&#39; would have" in page.text and "at least 5 are advised" in page.text
    assert counts(services, DatasetType.TEST) == 0, "showing the split moves nothing"
    assert "and has no test images yet" in page.text
    assert "there is no TEST dataset yet" not in page.text, "the split panel says it, once"

    r = client.post("/console/projects/fruit/train", data={"csrf_token": olga, "split": "auto"})
    assert r.status_code == 303
    assert counts(services, DatasetType.TEST) == moved
    assert counts(services, DatasetType.TRAIN) == 18 - moved
    page = client.get("/console/projects/fruit/train")
    assert 'id="split-preview"' not in page.text and 'id="split-kept"' in page.text
    assert f"your {moved} test images as they are" in page.text


def test_keeping_the_datasets_without_test_images_is_refused_with_the_reason(
    client: TestClient, services: Services, olga: str
) -> None:
    fill(services, {"apple": 6, "pear": 6})
    r = client.post("/console/projects/fruit/train", data={"csrf_token": olga, "split": "keep"})
    assert r.status_code == 400 and "no test images" in r.text and 'id="train-error"' in r.text
    assert 'name="split" value="keep" checked' in r.text, "the form comes back with the choice made"
    assert counts(services, DatasetType.TEST) == 0 and counts(services, DatasetType.TRAIN) == 12
    assert services.repo.list_versions(services.repo.get_project("fruit").id) == []
    r = client.post("/console/projects/fruit/train", data={"csrf_token": olga, "split": "sideways"})
    assert r.status_code == 400 and "choose how to get test images" in r.text

    split_dataset(services, "fruit")  # the operator's own TEST images: kept as they are
    before = counts(services, DatasetType.TEST)
    r = client.post("/console/projects/fruit/train", data={"csrf_token": olga, "split": "keep"})
    assert r.status_code == 303 and counts(services, DatasetType.TEST) == before


def test_no_split_choice_when_training_would_not_split(
    client: TestClient, services: Services, olga: str
) -> None:
    fill(services, {"apple": 6})  # one label: training refuses before any split
    page = client.get("/console/projects/fruit/train")
    assert page.status_code == 200 and 'id="split"' not in page.text
