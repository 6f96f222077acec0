"""Buckets that lead out of the buckets folder, and bucket entries that are no files, through boto3 against
the session's real server: CreateDataset, UpdateDatasetEntries, A2I's StartHumanLoop and OutputConfig
neither read nor write through them, and a FIFO never blocks a call."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import Server, put_labelled_images, put_manifest
from tests.aws.test_a2i import _client, _flow
from tests.aws.test_versions import FAST, _project_with_train
from tests.factories import classification_line, image_bytes

SECRET = "not-for-your-eyes"


@pytest.fixture(scope="module")
def escape(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A bucket folder that is a link to a folder outside the buckets folder, holding an image and a
    manifest naming it."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "img.jpg").write_bytes(image_bytes(color=(1, 2, 3)))
    (outside / "m.manifest").write_text(classification_line("s3://escape-paths/img.jpg", SECRET) + "\n")
    link = Path(server.settings.resolved_buckets_url) / "escape-paths"
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, link)
    yield "escape-paths"
    link.unlink()


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    assert SECRET not in r["Error"]["Message"]
    return r["Error"]["Code"], r["Error"]["Message"]


def _create(rek: Any, project: str, bucket: str, key: str) -> str:
    source = {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}}
    arn: str = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)["DatasetArn"]
    return arn


def test_a_manifest_in_a_linked_bucket_is_not_read(rek: Any, server: Server, escape: str) -> None:
    project = rek.create_project(ProjectName=server.name("paths"))["ProjectArn"]
    code, message = _error(lambda: _create(rek, project, escape, "m.manifest"))
    assert code == "InvalidS3ObjectException" and "outside the buckets folder" in message
    code, _ = _error(lambda: _create(rek, project, "datasets", f"../{escape}/m.manifest"))
    assert code in ("InvalidS3ObjectException", "InvalidParameterException")
    assert rek.describe_projects()["ProjectDescriptions"]  # the server is fine


def test_fifos_and_folders_in_a_bucket_are_no_manifests(rek: Any, server: Server) -> None:
    server.svc.buckets.create_bucket("pipes-aws")
    folder = Path(server.settings.resolved_buckets_url) / "pipes-aws"
    os.mkfifo(folder / "m.manifest")
    (folder / "dir.manifest").mkdir()
    project = rek.create_project(ProjectName=server.name("paths"))["ProjectArn"]
    started = time.monotonic()
    for key in ("m.manifest", "dir.manifest"):
        code, _ = _error(lambda key=key: _create(rek, project, "pipes-aws", key))
        assert code == "InvalidS3ObjectException"
    assert time.monotonic() - started < 10


def test_entries_naming_a_linked_bucket_are_refused(rek: Any, server: Server, escape: str) -> None:
    project = rek.create_project(ProjectName=server.name("paths"))["ProjectArn"]
    lines = put_labelled_images(server, "paths-ok", "fruit", {"red": 3, "blue": 3})
    manifest = put_manifest(server, "paths-ok", "train.manifest", lines)
    arn = _create(rek, project, manifest["Bucket"], manifest["Name"])
    line = classification_line(f"s3://{escape}/img.jpg", "red")
    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": f"{line}\n".encode()})
    desc = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    # the refused line is kept with its error (counted in TotalEntries and ErrorEntries), never imported
    stats = desc["DatasetStats"]
    assert (stats["TotalEntries"], stats["ErrorEntries"]) == (7, 1) and SECRET not in desc["StatusMessage"]
    assert "outside the buckets folder" in desc["StatusMessage"]
    kept = rek.list_dataset_entries(DatasetArn=arn, HasErrors=True)["DatasetEntries"]
    assert len(kept) == 1 and escape in kept[0] and SECRET not in kept[0]


def test_a2i_inputs_in_a_linked_bucket_are_refused(rek: Any, server: Server, escape: str) -> None:
    a2i = _client(server)
    _project, flow = _flow(rek, server)
    content = json.dumps({"taskObject": f"s3://{escape}/img.jpg"})
    with pytest.raises(ClientError) as e:
        a2i.start_human_loop(
            HumanLoopName="escape", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
        )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "outside the buckets folder" in e.value.response["Error"]["Message"]


def test_output_config_is_not_written_through_a_linked_bucket(
    rek: Any, server: Server, tmp_path: Path
) -> None:
    link = Path(server.settings.resolved_buckets_url) / "escape-out"
    os.symlink(tmp_path, link)
    try:
        _name, project = _project_with_train(rek, server, {"red": 6, "blue": 6})
        output = {"S3Bucket": "escape-out", "S3KeyPrefix": "models"}
        rek.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig=output)
        rek.get_waiter("project_version_training_completed").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig=FAST
        )
        (done,) = rek.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
        assert done["Status"] == "TRAINING_COMPLETED" and "Summary" not in done["EvaluationResult"]
        assert list(tmp_path.iterdir()) == []
    finally:
        link.unlink()
