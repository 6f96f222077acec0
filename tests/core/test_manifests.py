import json

from tests.factories import classification_line, detection_line
from visionloop.core.entities import ImportIssue
from visionloop.core.manifests import ManifestLine, parse_manifest


def parse(*lines: str) -> list[ManifestLine | ImportIssue]:
    return list(parse_manifest(lines))


def test_single_label_line() -> None:
    [line] = parse(classification_line("s3://bkt/a.jpg", "Sunrise", attr="scene"))
    assert isinstance(line, ManifestLine)
    assert line.labels == ("Sunrise",) and line.kind == "classification" and line.line_no == 1


def test_multi_label_one_attribute_per_label() -> None:
    meta = {
        "confidence": 0.8,
        "type": "groundtruth/image-classification",
        "human-annotated": "yes",
        "creation-date": "x",
    }
    obj = {
        "source-ref": "s3://bkt/1.jpg",
        "sport0": 0,
        "sport0-metadata": {**meta, "class-name": "football"},
        "sport1": 1,
        "sport1-metadata": {**meta, "class-name": "ball"},
    }
    [line] = parse(json.dumps(obj))
    assert isinstance(line, ManifestLine) and line.labels == ("football", "ball")


def test_native_sagemaker_multilabel_is_converted() -> None:
    obj = {
        "source-ref": "s3://bkt/1.jpg",
        "genre": [0, 2],
        "genre-metadata": {
            "class-map": {"0": "drama", "1": "comedy", "2": "horror"},
            "confidence-map": {"0": 0.9, "2": 0.8},
            "type": "groundtruth/image-classification-multilabel",
            "human-annotated": "yes",
            "creation-date": "x",
        },
    }
    [line] = parse(json.dumps(obj))
    assert isinstance(line, ManifestLine) and line.labels == ("drama", "horror")


def test_detection_line() -> None:
    [line] = parse(
        detection_line("s3://bkt/a.png", [("Echo", 10, 20, 30, 40), ("Dot", 0, 0, 5, 5)], (640, 480))
    )
    assert isinstance(line, ManifestLine) and line.kind == "detection"
    assert [(b.label, b.left, b.top, b.width, b.height) for b in line.boxes] == [
        ("Echo", 10, 20, 30, 40),
        ("Dot", 0, 0, 5, 5),
    ]


def test_unlabelled_line() -> None:
    [line] = parse('{"source-ref": "s3://bkt/x.jpg"}')
    assert isinstance(line, ManifestLine) and line.kind == "unlabeled" and line.labels == ()


def test_bad_lines_are_reported_by_line_number() -> None:
    good = classification_line("s3://bkt/a.jpg", "x")
    out = parse(
        good,
        "{not json",
        "",
        '["a list"]',
        '{"scene": 0}',
        '{"source-ref": "s3://bkt/../../etc/passwd"}',
        '{"source-ref": "/local/file.jpg"}',
        json.dumps(
            {
                "source-ref": "s3://bkt/c.jpg",
                "l": 0,
                "l-metadata": {"type": "groundtruth/image-classification"},
            }
        ),
        json.dumps(
            {
                "source-ref": "s3://bkt/c.jpg",
                "l": 0,
                "l-metadata": {"type": "groundtruth/semantic-segmentation"},
            }
        ),
        json.dumps(
            {
                "source-ref": "s3://bkt/c.jpg",
                "l": 0,
                "l-metadata": {"type": "groundtruth/image-classification", "class-name": "x" * 300},
            }
        ),
        detection_line("s3://bkt/d.jpg", [("a", 1, 1, 1, 1)], (10, 10)).replace(
            '"class_id": 0', '"class_id": 7'
        ),
    )
    assert isinstance(out[0], ManifestLine)
    issues = {i.ref: i.code for i in out if isinstance(i, ImportIssue)}
    assert issues == {
        "line 2": "ERROR_INVALID_JSON_LINE",
        "line 3": "ERROR_INVALID_JSON_LINE",
        "line 4": "ERROR_INVALID_JSON_LINE",
        "line 5": "ERROR_MISSING_SOURCE_REF",
        "line 6": "ERROR_INVALID_SOURCE_REF_FORMAT",
        "line 7": "ERROR_INVALID_SOURCE_REF_FORMAT",
        "line 8": "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
        "line 9": "ERROR_UNSUPPORTED_USE_CASE_TYPE",
        "line 10": "ERROR_INVALID_LABEL_NAME_LENGTH",
        "line 11": "ERROR_MISSING_CLASS_MAP_ID",
    }


def test_a_line_may_name_its_group() -> None:
    base = json.loads(classification_line("s3://bkt/a.jpg", "x"))
    out = parse(
        json.dumps({**base, "visionloop-group": " monday "}),
        json.dumps({**base, "group": "tuesday"}),
        json.dumps({**base, "visionloop-group": "ours", "group": "theirs"}),
        json.dumps({**base, "group": 7}),  # not a plain string: someone else's attribute, ignored
        classification_line("s3://bkt/b.jpg", "x", attr="group"),  # a label attribute named group
        json.dumps(base),
    )
    groups = [line.group for line in out if isinstance(line, ManifestLine)]
    assert groups == ["monday", "tuesday", "ours", None, None, None]
    assert out[4].labels == ("x",)  # type: ignore[union-attr]


def test_bad_groups_are_line_errors() -> None:
    base = json.loads(classification_line("s3://bkt/a.jpg", "x"))
    out = parse(
        json.dumps({**base, "visionloop-group": 3}),
        json.dumps({**base, "visionloop-group": ""}),
        json.dumps({**base, "visionloop-group": None}),
        json.dumps({**base, "visionloop-group": ["a"]}),
        json.dumps({**base, "visionloop-group": "g" * 256}),
        json.dumps({**base, "group": "   "}),
    )
    assert [(i.ref, i.code) for i in out if isinstance(i, ImportIssue)] == [
        (f"line {n}", "ERROR_INVALID_GROUP") for n in range(1, 7)
    ]
    assert "must be a string, not int" in out[0].message  # type: ignore[union-attr]
    assert "'group'" in out[5].message  # type: ignore[union-attr]
