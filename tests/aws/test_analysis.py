"""DetectLabels, DetectText and DetectModerationLabels through boto3 against the real server, with the
real pretrained models (loaded once per session by the server's analysers): Bytes and S3Object, the
options, the answer's shape, and each bad request answered with its modelled error."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import Server
from tests.conftest import shared_dataset
from tests.factories import image_bytes

PLAIN = image_bytes(160, 120, (90, 140, 200))


@pytest.fixture(scope="module")
def banana() -> bytes:
    return sorted((shared_dataset("grocery-produce") / "Banana").glob("*.jpg"))[0].read_bytes()


@pytest.fixture(scope="module")
def sign() -> bytes:
    return (shared_dataset("ocr") / "signs" / "chinese.jpg").read_bytes()


def _code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def test_detect_labels(rek: Any, server: Server, banana: bytes) -> None:
    r = rek.detect_labels(Image={"Bytes": banana}, MaxLabels=10, MinConfidence=50)
    assert r["LabelModelVersion"] == "3.0" and "ImageProperties" not in r
    labels = {x["Name"]: x for x in r["Labels"]}
    assert {"Banana", "Fruit", "Food"} <= set(labels) and len(r["Labels"]) <= 10
    assert [p["Name"] for p in labels["Banana"]["Parents"]] == ["Fruit", "Produce", "Food"]
    assert labels["Banana"]["Categories"] == [{"Name": "Food and Beverage"}]
    box = labels["Banana"]["Instances"][0]["BoundingBox"]
    assert set(box) == {"Width", "Height", "Left", "Top"} and 0 < box["Width"] <= 1
    confidences = [x["Confidence"] for x in r["Labels"]]
    assert confidences == sorted(confidences, reverse=True) and min(confidences) >= 50
    server.svc.buckets.create_bucket("analysis-in")
    server.svc.buckets.put("analysis-in", "fruit/banana.jpg", banana)
    by_ref = rek.detect_labels(
        Image={"S3Object": {"Bucket": "analysis-in", "Name": "fruit/banana.jpg"}},
        MaxLabels=10,
        MinConfidence=50,
    )
    assert by_ref["Labels"] == r["Labels"]
    only = rek.detect_labels(
        Image={"Bytes": banana},
        Settings={"GeneralLabels": {"LabelInclusionFilters": ["Banana", "Person"]}},
    )
    assert [x["Name"] for x in only["Labels"]] == ["Banana"]
    no_food = rek.detect_labels(
        Image={"Bytes": banana},
        Settings={"GeneralLabels": {"LabelCategoryExclusionFilters": ["Food and Beverage"]}},
    )
    assert all(x["Categories"] != [{"Name": "Food and Beverage"}] for x in no_food["Labels"])


def test_detect_labels_image_properties(rek: Any, banana: bytes) -> None:
    r = rek.detect_labels(
        Image={"Bytes": banana},
        Features=["IMAGE_PROPERTIES"],
        Settings={"ImageProperties": {"MaxDominantColors": 3}},
    )
    assert "Labels" not in r
    props = r["ImageProperties"]
    assert set(props["Quality"]) == {"Brightness", "Sharpness", "Contrast"}
    assert 1 <= len(props["DominantColors"]) <= 3
    colour = props["DominantColors"][0]
    assert set(colour) == {"Red", "Green", "Blue", "HexCode", "CSSColor", "SimplifiedColor", "PixelPercent"}
    assert set(props["Foreground"]["Quality"]) == {"Brightness", "Sharpness"}
    assert props["Background"]["DominantColors"]
    both = rek.detect_labels(Image={"Bytes": banana}, Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"])
    assert both["Labels"] and both["ImageProperties"]


def test_detect_text(rek: Any, sign: bytes) -> None:
    r = rek.detect_text(Image={"Bytes": sign})
    assert r["TextModelVersion"] == "3.0"
    lines = [d for d in r["TextDetections"] if d["Type"] == "LINE"]
    words = [d for d in r["TextDetections"] if d["Type"] == "WORD"]
    assert "Yuyuan Rd." in [d["DetectedText"] for d in lines]
    line_ids = {d["Id"] for d in lines}
    assert words and all(w["ParentId"] in line_ids for w in words) and all("ParentId" not in d for d in lines)
    geometry = lines[0]["Geometry"]
    assert (
        set(geometry["BoundingBox"]) == {"Width", "Height", "Left", "Top"} and len(geometry["Polygon"]) == 4
    )
    left_half = rek.detect_text(
        Image={"Bytes": sign},
        Filters={"RegionsOfInterest": [{"BoundingBox": {"Left": 0, "Top": 0, "Width": 0.5, "Height": 1}}]},
    )
    kept = [d for d in left_half["TextDetections"] if d["Type"] == "WORD"]
    assert 0 < len(kept) < len(words)
    assert all(w["Geometry"]["BoundingBox"]["Left"] < 0.5 for w in kept)
    strict = rek.detect_text(Image={"Bytes": sign}, Filters={"WordFilter": {"MinBoundingBoxHeight": 0.9}})
    assert strict["TextDetections"] == []


def test_detect_moderation_labels(rek: Any, banana: bytes) -> None:
    r = rek.detect_moderation_labels(Image={"Bytes": banana})
    assert r["ModerationLabels"] == [] and r["ModerationModelVersion"] == "7.0"


def test_analysis_errors(rek: Any, rek_raw: Any, server: Server) -> None:
    server.svc.buckets.create_bucket("analysis-err")
    server.svc.buckets.put("analysis-err", "huge.jpg", PLAIN + bytes(15 * 1024 * 1024))
    ok = {"Bytes": PLAIN}
    image_cases: list[tuple[Any, dict[str, Any], str]] = [
        (
            rek,
            {"Image": {"Bytes": PLAIN, "S3Object": {"Bucket": "analysis-err", "Name": "x.jpg"}}},
            "InvalidParameter",
        ),
        (rek, {"Image": {}}, "InvalidParameter"),
        (rek_raw, {}, "InvalidParameter"),
        (rek, {"Image": {"Bytes": PLAIN + bytes(5 * 1024 * 1024)}}, "ImageTooLarge"),  # over 5 MB
        (rek, {"Image": {"S3Object": {"Bucket": "analysis-err", "Name": "huge.jpg"}}}, "ImageTooLarge"),
        (rek, {"Image": {"Bytes": image_bytes(10_001, 100)}}, "ImageTooLarge"),  # over 10,000 px
        (rek, {"Image": {"Bytes": b"not an image at all"}}, "InvalidImageFormat"),
        (rek, {"Image": {"Bytes": image_bytes(fmt="GIF")}}, "InvalidImageFormat"),
        (rek, {"Image": {"Bytes": image_bytes(79, 100)}}, "InvalidParameter"),  # under 80 px
        (rek, {"Image": {"S3Object": {"Bucket": "analysis-err", "Name": "nothing.jpg"}}}, "InvalidS3Object"),
        (rek, {"Image": {"S3Object": {"Bucket": "no-such-bucket", "Name": "x.jpg"}}}, "InvalidS3Object"),
        (
            rek,
            {"Image": {"S3Object": {"Bucket": "analysis-err", "Name": "../escape.jpg"}}},
            "InvalidS3Object",
        ),
    ]
    for op in (rek.detect_labels, rek.detect_text, rek.detect_moderation_labels):
        for i, (client, kwargs, code) in enumerate(image_cases):
            with pytest.raises(ClientError) as e:
                getattr(client, op.__name__)(**kwargs)
            err = e.value.response
            assert _code(e) == f"{code}Exception", (op.__name__, i, err)
            assert err["ResponseMetadata"]["HTTPStatusCode"] == 400 and err["Error"]["Message"], (i, err)
    half = {"Left": 0, "Top": 0, "Width": 0.5, "Height": 0.5}
    flow = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/f"
    adapter = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"
    option_cases: list[tuple[str, dict[str, Any]]] = [
        ("detect_labels", {"MinConfidence": 101}),
        ("detect_labels", {"MinConfidence": -1}),
        ("detect_labels", {"MaxLabels": -1}),
        ("detect_labels", {"Features": ["FACES"]}),
        ("detect_labels", {"Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES", "GENERAL_LABELS"]}),
        ("detect_labels", {"Settings": {"GeneralLabels": {"LabelInclusionFilters": ["x" * 51]}}}),
        ("detect_labels", {"Settings": {"ImageProperties": {"MaxDominantColors": 21}}}),
        ("detect_text", {"Filters": {"WordFilter": {"MinConfidence": 101}}}),
        ("detect_text", {"Filters": {"WordFilter": {"MinBoundingBoxHeight": 1.5}}}),
        ("detect_text", {"Filters": {"RegionsOfInterest": [{}]}}),
        (
            "detect_text",
            {"Filters": {"RegionsOfInterest": [{"Polygon": [{"X": 0, "Y": 0}, {"X": 1, "Y": 1}]}]}},
        ),
        ("detect_text", {"Filters": {"RegionsOfInterest": [{"BoundingBox": {**half, "Width": 0}}]}}),
        ("detect_text", {"Filters": {"RegionsOfInterest": [{"BoundingBox": half}] * 11}}),
        ("detect_moderation_labels", {"MinConfidence": 101}),
        (
            "detect_moderation_labels",
            {"HumanLoopConfig": {"HumanLoopName": "Bad_Name", "FlowDefinitionArn": flow}},
        ),
        ("detect_moderation_labels", {"ProjectVersion": adapter}),
    ]
    for name, kwargs in option_cases:
        with pytest.raises(ClientError) as e:
            getattr(rek_raw, name)(Image=ok, **kwargs)
        assert _code(e) == "InvalidParameterException", (name, kwargs, e.value.response)
    for odd in (float("nan"), float("inf")):
        with pytest.raises(rek.exceptions.InvalidParameterException):
            rek.detect_labels(Image=ok, MinConfidence=odd)
