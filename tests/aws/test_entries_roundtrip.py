"""ListDatasetEntries answers the lines as the user imported them (boto3 against the real server): their
attribute names, job names, dates, integer pixel boxes and fields of their own, Rekognition's
``cl-metadata`` beside; a label changed by the product is answered under the user's attribute name;
entries that came from elsewhere answer the Ground Truth line AWS would write."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.aws.conftest import Server, create_train_dataset, dataset_entries
from tests.factories import image_bytes
from visionloop.core import curation
from visionloop.core.entities import Box

BUCKET = "roundtrip"
CLASSIFIED = {"type": "groundtruth/image-classification", "human-annotated": "yes", "confidence": 0.8}


def _put(server: Server, key: str, colour: tuple[int, int, int], size: tuple[int, int] = (96, 80)) -> str:
    server.svc.buckets.create_bucket(BUCKET)
    server.svc.buckets.put(BUCKET, key, image_bytes(*size, colour))
    return f"s3://{BUCKET}/{key}"


def _logo_line(ref: str, label: str, **extra: Any) -> dict[str, Any]:
    meta = {**CLASSIFIED, "class-name": label, "creation-date": "2020-03-06T17:46:39.176", "job-name": "mine"}
    return {"source-ref": ref, "logo": 0, "logo-metadata": meta, **extra}


def _create(rek: Any, server: Server, stem: str, lines: list[dict[str, Any]]) -> tuple[str, str]:
    return create_train_dataset(rek, server, BUCKET, stem, [json.dumps(line) for line in lines])


def _labelled(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "cl-metadata": {"is_labeled": True}}


def test_classification_lines_come_back_as_given_and_a_relabel_keeps_the_attribute_name(
    rek: Any, server: Server
) -> None:
    lines = [
        _logo_line(_put(server, "c/a.jpg", (200, 20, 20)), "acme", **{"my-notes": {"shot": 3}}),
        _logo_line(_put(server, "c/b.jpg", (20, 20, 200)), "globex"),
        {"source-ref": _put(server, "c/c.jpg", (20, 200, 20)), "visionloop-group": "shelf-1"},
    ]
    project, arn = _create(rek, server, "logos", lines)
    got = dataset_entries(rek, arn)
    assert got[:2] == [_labelled(lines[0]), _labelled(lines[1])]  # 'logo', job-name, date, own fields
    assert got[2] == {**lines[2], "cl-metadata": {"is_labeled": False}}

    # the product relabels the first image (native REST, as the console does): the user's attribute stays
    name = project.split("/")[1]
    (entry,) = [
        e for e in server.svc.repo.list_entries(_dataset_id(server, name)) if e.source_ref.endswith("a.jpg")
    ]
    r = httpx.patch(f"{server.url}/api/v1/projects/{name}/entries/{entry.id}", json={"labels": ["initech"]})
    assert r.status_code == 200
    (changed,) = dataset_entries(rek, arn, SourceRefContains="c/a.jpg")
    assert changed["logo-metadata"]["class-name"] == "initech"
    assert changed["logo"] == 0 and changed["my-notes"] == {"shot": 3}
    assert not any(k.startswith("visionloop-label") for k in changed)
    assert dataset_entries(rek, arn, SourceRefContains="c/b.jpg") == [_labelled(lines[1])]  # untouched


def _dataset_id(server: Server, project_name: str) -> int:
    project = server.svc.repo.get_project(project_name)
    (dataset,) = server.svc.repo.list_datasets(project.id)
    return dataset.id


def test_detection_lines_keep_integer_boxes_and_a_changed_box_keeps_the_others_as_given(
    rek: Any, server: Server
) -> None:
    ref = _put(server, "d/a.png", (10, 200, 10), size=(200, 100))
    line: dict[str, Any] = {
        "source-ref": ref,
        "shapes": {
            "image_size": [{"width": 200, "height": 100, "depth": 3}],
            "annotations": [
                {"class_id": 4, "left": 10, "top": 20, "width": 50, "height": 40},
                {"class_id": 7, "left": 100, "top": 10, "width": 60, "height": 80},
            ],
        },
        "shapes-metadata": {
            "objects": [{"confidence": 0.9}, {"confidence": 0.7}],
            "class-map": {"4": "cat", "7": "dog"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2013-11-18T02:53:27",
            "job-name": "my job",
        },
    }
    project, arn = _create(rek, server, "boxes", [line])
    (got,) = dataset_entries(rek, arn)
    assert got == _labelled(line)
    assert all(isinstance(a["left"], int) for a in got["shapes"]["annotations"])

    # the console moves the dog's box: the cat's annotation and the user's names and class ids stay
    name = project.split("/")[1]
    (entry,) = server.svc.repo.list_entries(_dataset_id(server, name))
    cat = entry.boxes[0]
    curation.set_boxes(
        server.svc, name, entry.id, [cat, Box("dog", 0.25, 0.5, 0.5, 0.25), Box("bird", 0, 0, 0.1, 0.1)]
    )
    (changed,) = dataset_entries(rek, arn)
    assert set(changed) == {"source-ref", "shapes", "shapes-metadata", "cl-metadata"}
    annotations = changed["shapes"]["annotations"]
    assert annotations[0] == line["shapes"]["annotations"][0]  # as given
    assert annotations[1] == {"class_id": 7, "left": 50, "top": 50, "width": 100, "height": 25}
    assert annotations[2] == {"class_id": 8, "left": 0, "top": 0, "width": 20, "height": 10}
    meta = changed["shapes-metadata"]
    assert meta["class-map"] == {"4": "cat", "7": "dog", "8": "bird"} and meta["job-name"] == "my job"
    assert len(meta["objects"]) == 3


def test_uploaded_entries_answer_the_line_aws_would_write(rek: Any, server: Server) -> None:
    project = rek.create_project(ProjectName=server.name("uploads"))["ProjectArn"]
    name = project.split("/")[1]
    arn = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    r = httpx.post(
        f"{server.url}/api/v1/projects/{name}/datasets/train/images",
        files={"file": ("up.jpg", image_bytes(96, 80, (90, 90, 10)), "image/jpeg")},
        data={"labels": ["acme"]},
    )
    assert r.status_code == 201
    (got,) = dataset_entries(rek, arn)
    assert got["source-ref"] == "upload:up.jpg" and got["cl-metadata"] == {"is_labeled": True}
    (attr,) = [k for k in got if k.endswith("-metadata") and k != "cl-metadata"]
    meta = got[attr]
    assert meta["class-name"] == "acme" and meta["type"] == "groundtruth/image-classification"
    assert {"human-annotated", "creation-date", "job-name", "confidence"} <= set(meta)


def test_lines_stay_as_given_when_moved_to_test_and_when_copied(rek: Any, server: Server) -> None:
    lines = [_logo_line(_put(server, f"m/{i}.jpg", (10 + 20 * i, 60, 9 * i)), "ab"[i % 2]) for i in range(10)]
    project, train = _create(rek, server, "moved", lines)
    test = rek.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    rek.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    moved = dataset_entries(rek, test)
    assert moved and all(
        e == _labelled(next(x for x in lines if x["source-ref"] == e["source-ref"])) for e in moved
    )
    other = rek.create_project(ProjectName=server.name("copied"))["ProjectArn"]
    copy = rek.create_dataset(ProjectArn=other, DatasetType="TRAIN", DatasetSource={"DatasetArn": train})
    assert dataset_entries(rek, copy["DatasetArn"]) == dataset_entries(rek, train)


def test_update_dataset_entries_answers_the_new_line(rek: Any, server: Server) -> None:
    line = _logo_line(_put(server, "u/a.jpg", (140, 10, 140)), "acme")
    _project, arn = _create(rek, server, "updated", [line])
    new = _logo_line(line["source-ref"], "globex", batch=2)
    new["logo-metadata"]["job-name"] = "second pass"
    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": json.dumps(new).encode()})
    assert dataset_entries(rek, arn) == [_labelled(new)]
