"""The evaluation page's most confused pairs: which label the model took for which, most first, with
thumbnails of those test images (served by the version's image route)."""

from __future__ import annotations

import json
import re

import numpy as np
from fastapi.testclient import TestClient

from tests.web.console.data import evaluation_json, store_evaluation
from visionloop.core.entities import ModelVersion
from visionloop.core.services import Services
from visionloop.core.training import SNAPSHOTS_BUCKET
from visionloop.web.console.evaluation import ImageRow, confused_pairs

LABELS = ("amazon_logo", "aws_logo", "other")


def _row(i: int, true: tuple[str, ...], top: str) -> ImageRow:
    return ImageRow(i, f"{i:064x}", true, top, 0.9, top in true, (top,), (), ())


def test_pairs_are_ranked_by_wrong_images_and_right_answers_are_left_out() -> None:
    rows = [
        _row(0, ("cat",), "dog"),
        _row(1, ("fox",), "dog"),
        _row(2, ("fox",), "dog"),
        _row(3, ("dog",), "dog"),
        _row(4, ("cat", "fox"), "dog"),  # multi-label: a wrong top label counts for each label held
        _row(5, ("cat",), "cat"),
        _row(6, ("cow",), "ant"),
    ]
    pairs = confused_pairs(rows)
    assert [(p.true_label, p.predicted, [r.index for r in p.images]) for p in pairs] == [
        ("fox", "dog", [1, 2, 4]),
        ("cat", "dog", [0, 4]),
        ("cow", "ant", [6]),
    ]
    assert len(confused_pairs(rows, limit=1)) == 1 and confused_pairs([rows[3], rows[5]]) == []


def test_the_page_shows_thumbnails_of_the_most_confused_pair(
    client: TestClient, olga: str, services: Services, logos: list[ModelVersion]
) -> None:
    v1 = logos[0]
    snapshot = json.loads(services.store.get(SNAPSHOTS_BUCKET, f"{v1.snapshot_id}.json"))
    test = [row for row in snapshot["test"] if row["labels"]]
    truth = [LABELS.index(row["labels"][0]) for row in test]
    taken = [i for i, t in enumerate(truth) if t == 0]  # every amazon_logo test image taken for aws_logo
    probs = np.full((len(truth), 3), 0.1)
    for i, t in enumerate(truth):
        probs[i, 1 if i in taken else t] = 0.8
    evaluation = evaluation_json(truth, probs, LABELS, image_ids=[row["hash"] for row in test])
    store_evaluation(services, v1, evaluation)

    page = client.get("/console/projects/logos/versions/v1").text
    assert 'id="most-confused"' in page
    first = page.split('<div class="confused-pair">')[1].split("</ul>")[0]
    assert "<strong>amazon_logo</strong> taken for <strong>aws_logo</strong>: 2 test images" in first
    sources = re.findall(r'<img src="([^"]+)"', first)
    assert sorted(s.rsplit("/", 1)[1] for s in sources) == sorted(test[i]["hash"] for i in taken)
    for src in sources:
        image = client.get(src)
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
