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
