"""Manifest lines with errors are kept, as Custom Labels keeps them (boto3 and the native REST API against the
real server): DatasetStats.ErrorEntries counts them, ListDatasetEntries with HasErrors lists each with an
``errors`` list, they never reach training, and a corrected line for the same source-ref replaces one."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.aws.conftest import Server, create_train_dataset, dataset_entries, put_labelled_images
from tests.factories import classification_line, image_bytes
from visionloop.core.projects import all_entries

BUCKET = "witherrors"


def _stats(rek: Any, arn: str) -> dict[str, int]:
    stats: dict[str, int] = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]["DatasetStats"]
    return stats


def _good_lines(server: Server, prefix: str) -> list[str]:
    return put_labelled_images(server, BUCKET, prefix, {"red": 5, "blue": 5})


def test_rejected_lines_are_kept_counted_listed_and_never_trained_on(rek: Any, server: Server) -> None:
    missing = classification_line(f"s3://{BUCKET}/kept/absent.jpg", "red", attr="colour")
    lines = [*_good_lines(server, "kept"), "{not json", missing]
    project, arn = create_train_dataset(rek, server, BUCKET, "kept", lines)
    desc = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    assert desc["Status"] == "CREATE_COMPLETE"
    assert desc["DatasetStats"] == {
        "LabeledEntries": 10,
        "TotalEntries": 12,
        "TotalLabels": 2,
        "ErrorEntries": 2,
    }

    bad = dataset_entries(rek, arn, HasErrors=True)
    assert [e["errors"][0]["code"] for e in bad] == ["ERROR_INVALID_JSON_LINE", "ERROR_INVALID_SOURCE_REF"]
    assert bad[0]["visionloop-line"] == "{not json"  # not JSON: the text as given, wrapped
    assert {k: v for k, v in bad[1].items() if k not in ("errors", "cl-metadata")} == json.loads(missing)
    assert all(e["errors"][0]["message"] for e in bad)
    assert len(dataset_entries(rek, arn, HasErrors=False)) == 10
    everything = dataset_entries(rek, arn, PaginationConfig={"PageSize": 3})
    assert len(everything) == 12 and everything[10:] == bad  # entries first, then the rejected lines
    assert dataset_entries(rek, arn, HasErrors=True, SourceRefContains="absent") == [bad[1]]
    assert dataset_entries(rek, arn, ContainsLabels=["red"], HasErrors=True) == []
    assert (
        len(dataset_entries(rek, arn, Labeled=True)) == 10 and dataset_entries(rek, arn, Labeled=False) == []
    )

    # training reads the entries only: the rejected lines are not among them
    name = project.split("/")[1]
    p = server.svc.repo.get_project(name)
    (dataset,) = server.svc.repo.list_datasets(p.id)
    assert len(list(all_entries(server.svc, dataset))) == 10

    # the native REST API lists them with their reasons, and deletes one
    url = f"{server.url}/api/v1/projects/{name}/datasets/train"
    listed = httpx.get(f"{url}/rejected-lines").json()
    assert listed["total"] == 2 and [r["line"] for r in listed["lines"]] == ["{not json", missing]
    assert listed["lines"][1]["source_ref"] == f"s3://{BUCKET}/kept/absent.jpg"
    assert listed["lines"][1]["errors"][0]["code"] == "ERROR_INVALID_SOURCE_REF"
    assert httpx.get(f"{url}/entries").json()["rejected_lines"] == 2
    assert httpx.delete(f"{url}/rejected-lines/{listed['lines'][0]['id']}").status_code == 204
    assert httpx.delete(f"{url}/rejected-lines/{listed['lines'][0]['id']}").status_code == 404
    assert httpx.delete(f"{url}/rejected-lines/0").status_code in (404, 422)
    assert _stats(rek, arn)["ErrorEntries"] == 1


def test_a_corrected_line_for_the_same_source_ref_replaces_the_rejected_one(rek: Any, server: Server) -> None:
    ref = f"s3://{BUCKET}/fixed/late.jpg"
    _project, arn = create_train_dataset(
        rek, server, BUCKET, "fixed", [*_good_lines(server, "fixed"), classification_line(ref, "red")]
    )
    assert _stats(rek, arn)["ErrorEntries"] == 1

    # the same line again while the image is still missing: still one rejected line for it, not two
    changes = classification_line(ref, "red").encode()
    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": changes})
    assert _stats(rek, arn)["ErrorEntries"] == 1

    server.svc.buckets.put(BUCKET, "fixed/late.jpg", image_bytes(96, 80, (250, 5, 120)))
    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": changes})
    assert _stats(rek, arn) == {"LabeledEntries": 11, "TotalEntries": 11, "TotalLabels": 2, "ErrorEntries": 0}
    assert dataset_entries(rek, arn, HasErrors=True) == []
    (entry,) = dataset_entries(rek, arn, SourceRefContains="late.jpg")
    assert "errors" not in entry and entry["label-metadata"]["class-name"] == "red"


def test_update_dataset_entries_keeps_a_line_whose_image_is_not_usable(rek: Any, server: Server) -> None:
    _project, arn = create_train_dataset(rek, server, BUCKET, "unusable", _good_lines(server, "unusable"))
    server.svc.buckets.put(BUCKET, "unusable/text.jpg", b"this is not an image")
    line = classification_line(f"s3://{BUCKET}/unusable/text.jpg", "blue")
    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": line.encode()})
    desc = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    assert desc["Status"] == "UPDATE_COMPLETE" and desc["DatasetStats"]["ErrorEntries"] == 1
    (bad,) = dataset_entries(rek, arn, HasErrors=True)
    assert bad["source-ref"].endswith("text.jpg") and bad["errors"][0]["code"].startswith("ERROR_")
    assert bad["label-metadata"]["class-name"] == "blue"  # the line as given, errors beside it


def test_a_refused_manifest_keeps_nothing(rek: Any, server: Server) -> None:
    lines = _good_lines(server, "refused")[:2] + ["x", "y"]  # half invalid: CreateDataset fails whole
    _project, arn = create_train_dataset(rek, server, BUCKET, "refused", lines)
    desc = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    assert desc["Status"] == "CREATE_FAILED"
    assert desc["DatasetStats"]["ErrorEntries"] == 0 and desc["DatasetStats"]["TotalEntries"] == 0
