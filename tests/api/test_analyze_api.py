"""POST /api/v1/analyze/labels|text|moderation in-process: every input form, options from the query and the
JSON body, every bad request answered with the error envelope (never a 500), and the real models."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import shared_dataset
from tests.factories import image_bytes
from visionloop.api.app import create_app
from visionloop.core.analyzing import Analysis
from visionloop.core.records.analysis import (
    BoundingBox,
    ImageLabel,
    LabelAnalysis,
    ModerationLabel,
    Point,
    TextDetection,
)
from visionloop.core.services import Services
from visionloop.settings import Settings

IMAGE = image_bytes(120, 100)
BOX = BoundingBox(0.1, 0.2, 0.3, 0.4)


class Fake:
    kind, version = "fake", "fake-1"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def warm_up(self) -> None:
        pass

    def detect(self, image: bytes, **options: Any) -> Any:
        self.calls.append({"image": image, **options})
        if "general_labels" in options:
            return LabelAnalysis(
                (ImageLabel("Cat", 90, (), ("Feline", "Animal"), (), ("Animals and Pets",)),)
            )
        if "regions" in options:
            poly = (Point(0.1, 0.2), Point(0.4, 0.2), Point(0.4, 0.6), Point(0.1, 0.6))
            return [
                TextDetection("HI", "LINE", 0, None, 98, BOX, poly),
                TextDetection("HI", "WORD", 1, 0, 98, BOX, poly),
            ]
        return [ModerationLabel("Swimwear or Underwear", "", 1, 77)]


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
def client(services: Services, settings: Settings, fake: Fake) -> Iterator[TestClient]:
    app = create_app(services, settings)
    app.state.analysis = Analysis(lambda kind: fake, workers=1)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.analysis.close()


def test_every_input_form(client: TestClient, fake: Fake, services: Services) -> None:
    services.buckets.create_bucket("photos")
    services.buckets.put("photos", "cat.jpg", IMAGE)
    answers = [
        client.post("/api/v1/analyze/labels", content=IMAGE, headers={"content-type": "image/jpeg"}),
        client.post("/api/v1/analyze/labels", files={"file": ("cat.jpg", IMAGE, "image/jpeg")}),
        client.post("/api/v1/analyze/labels", json={"image_base64": base64.b64encode(IMAGE).decode()}),
        client.post("/api/v1/analyze/labels", json={"s3_object": {"bucket": "photos", "name": "cat.jpg"}}),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.json() == {
            "labels": [
                {
                    "name": "Cat",
                    "confidence": 90,
                    "instances": [],
                    "parents": ["Feline", "Animal"],
                    "aliases": [],
                    "categories": ["Animals and Pets"],
                }
            ],
            "model_version": "fake-1",
        }
    assert [c["image"] for c in fake.calls] == [IMAGE] * 4


def test_options_from_query_and_body(client: TestClient, fake: Fake) -> None:
    url = "/api/v1/analyze/labels?min_confidence=95&features=GENERAL_LABELS&features=IMAGE_PROPERTIES"
    r = client.post(url, content=IMAGE, headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json()["labels"] == []  # 90 < 95
    assert fake.calls[-1]["image_properties"] and fake.calls[-1]["min_confidence"] == 95
    body = {"image_base64": base64.b64encode(IMAGE).decode(), "min_confidence": 10, "exclude": ["cat"]}
    r = client.post("/api/v1/analyze/labels?min_confidence=95", json=body)
    assert r.status_code == 200 and r.json()["labels"] == []  # the body wins; Cat is excluded
    assert fake.calls[-1]["min_confidence"] == 10


def test_text_and_moderation(client: TestClient, fake: Fake) -> None:
    body = {
        "image_base64": base64.b64encode(IMAGE).decode(),
        "min_confidence": 80,
        "regions": [
            {"box": {"left": 0, "top": 0, "width": 0.5, "height": 0.5}},
            {"polygon": [{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 0, "y": 1}]},
        ],
    }
    r = client.post("/api/v1/analyze/text", json=body)
    assert r.status_code == 200, r.text
    words = r.json()["text_detections"]
    assert [(w["kind"], w["id"], w["parent_id"]) for w in words] == [("LINE", 0, None), ("WORD", 1, 0)]
    assert words[0]["box"] == {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}
    assert words[0]["polygon"][0] == {"x": 0.1, "y": 0.2}
    assert fake.calls[-1]["regions"] == [BoundingBox(0, 0, 0.5, 0.5), (Point(0, 0), Point(1, 0), Point(0, 1))]
    r = client.post(
        "/api/v1/analyze/moderation?min_confidence=60", content=IMAGE, headers={"content-type": "image/jpeg"}
    )
    assert r.json() == {
        "moderation_labels": [
            {"name": "Swimwear or Underwear", "parent_name": "", "level": 1, "confidence": 77}
        ],
        "model_version": "fake-1",
    }
    assert fake.calls[-1]["min_confidence"] == 60


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "code"),
    [
        (
            "labels",
            {"content": b"not an image", "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidImage",
        ),
        ("labels", {"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "InvalidInput"),
        (
            "labels",
            {"content": image_bytes(60, 100), "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidInput",
        ),
        (
            "labels?min_confidence=101",
            {"content": IMAGE, "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidInput",
        ),
        (
            "labels?min_confidence=abc",
            {"content": IMAGE, "headers": {"content-type": "image/jpeg"}},
            422,
            "ValidationError",
        ),
        (
            "labels?features=FACES",
            {"content": IMAGE, "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidInput",
        ),
        (
            "labels?max_labels=-1",
            {"content": IMAGE, "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidInput",
        ),
        (
            "labels?max_dominant_colors=30",
            {"content": IMAGE, "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidInput",
        ),
        ("labels", {"json": {}}, 400, "InvalidInput"),
        (
            "labels",
            {"json": {"image_base64": "x", "s3_object": {"bucket": "b", "name": "k"}}},
            400,
            "InvalidInput",
        ),
        ("labels", {"json": {"image_base64": "!!!"}}, 400, "InvalidInput"),
        ("labels", {"json": {"image_base64": "", "colour": 1}}, 422, "ValidationError"),
        ("labels", {"json": {"s3_object": {"bucket": "photos", "name": "none.jpg"}}}, 404, "ObjectNotFound"),
        ("labels", {"json": {"s3_object": {"bucket": "photos", "name": "../x"}}}, 400, "InvalidKey"),
        ("labels", {"json": {"s3_object": {"bucket": "x", "name": "a.jpg"}}}, 400, "InvalidKey"),
        ("labels", {"files": {"image": ("a.jpg", IMAGE, "image/jpeg")}}, 400, "InvalidInput"),
        (
            "labels",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            422,
            "ValidationError",
        ),
        ("text", {"json": {"image_base64": "", "regions": [{}]}}, 400, "InvalidInput"),
        (
            "text",
            {"json": {"image_base64": "", "regions": [{"polygon": [{"x": 0, "y": 0}]}]}},
            400,
            "InvalidInput",
        ),
        (
            "text?min_box_height=2",
            {"content": IMAGE, "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidInput",
        ),
        (
            "moderation?min_confidence=-1",
            {"content": IMAGE, "headers": {"content-type": "image/jpeg"}},
            400,
            "InvalidInput",
        ),
        ("faces", {"content": IMAGE, "headers": {"content-type": "image/jpeg"}}, 404, "HTTPError"),
    ],
)
def test_bad_requests(client: TestClient, path: str, kwargs: dict[str, Any], status: int, code: str) -> None:
    r = client.post(f"/api/v1/analyze/{path}", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_too_large(client: TestClient) -> None:
    big = IMAGE + b"\0" * (5 * 1024 * 1024)
    r = client.post("/api/v1/analyze/labels", content=big, headers={"content-type": "image/jpeg"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "ImageTooLarge"


@pytest.fixture
def real_client(services: Services, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(services, settings), raise_server_exceptions=False) as c:
        yield c


def test_real_models(real_client: TestClient) -> None:
    from visionloop.analysis.registry import create_analyser

    banana = sorted((shared_dataset("grocery-produce") / "Banana").glob("*.jpg"))[0].read_bytes()
    r = real_client.post(
        "/api/v1/analyze/labels?features=GENERAL_LABELS&features=IMAGE_PROPERTIES&max_labels=5",
        files={"file": ("banana.jpg", banana, "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "Banana" in [x["name"] for x in body["labels"]] and len(body["labels"]) <= 5
    assert body["model_version"] == create_analyser("labels").version
    props = body["image_properties"]
    assert 0 <= props["quality"]["brightness"] <= 100 and props["dominant_colors"][0]["hex_code"].startswith(
        "#"
    )
    assert props["foreground"]["quality"]["contrast"] is None
    sign = (shared_dataset("ocr") / "signs" / "chinese.jpg").read_bytes()
    r = real_client.post("/api/v1/analyze/text", content=sign, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and "Yuyuan" in " ".join(d["text"] for d in r.json()["text_detections"])
    r = real_client.post("/api/v1/analyze/moderation", content=banana, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["moderation_labels"] == []
