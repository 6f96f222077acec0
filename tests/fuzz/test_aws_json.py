"""Generated requests for every operation of the AWS JSON 1.1 endpoint (``POST /`` with ``X-Amz-Target``):
bodies drawn from the operation's members (seeded ARNs, names, images, manifests) and mutated
(tests/fuzz/mutations.py). Every answer must be below 500; every error an AWS error body (``__type`` and
``message``, the code also in ``X-Amzn-ErrorType``). DetectLabels, DetectText and DetectModerationLabels get
no decodable image (no pretrained model runs: that would take the run's time); the rest get real ones."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from hypothesis import strategies as st

from tests.factories import image_bytes
from tests.fuzz.conftest import IMAGE, FuzzServer, Seeds
from tests.fuzz.harness import TALLY, budget, describe, run_cases
from tests.fuzz.mutations import Members, bodies, json_values, weird_strings
from visionloop.aws.responses import OPERATIONS

API = "aws-json"
CONTENT_TYPE = "application/x-amz-json-1.1"
ANALYSIS = ("DetectLabels", "DetectText", "DetectModerationLabels")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def names() -> st.SearchStrategy[str]:
    return st.from_regex(r"\A[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,20}\Z") | weird_strings


def arns(*known: str) -> st.SearchStrategy[str]:
    forged = st.sampled_from(known).map(lambda a: a.replace("fuzz", "ghost")) if known else st.nothing()
    return (
        st.sampled_from(known) | forged | weird_strings | st.just("arn:aws:rekognition:us-east-1:1:project/")
    )


def images(seeds: Seeds, decodable: bool) -> st.SearchStrategy[dict[str, Any]]:
    s3 = st.fixed_dictionaries(
        {"Bucket": st.sampled_from((seeds.bucket, "nope", "a")) | weird_strings},
        optional={"Name": st.sampled_from((seeds.image_key, "missing.jpg", "../x", "")) | weird_strings},
    )
    raw = st.binary(max_size=64) | st.sampled_from((b"\xff\xd8\xff\xe0" + b"\x00" * 20, b"GIF89a"))
    blobs = raw.map(b64) | st.sampled_from(("!!!", "abc", "", "====")) | weird_strings
    if decodable:
        blobs = blobs | st.just(b64(IMAGE)) | st.just(b64(image_bytes(8, 8, fmt="PNG")))
    else:
        s3 = s3.filter(lambda o: o.get("Name") != seeds.image_key)
    return st.fixed_dictionaries({}, optional={"Bytes": blobs, "S3Object": s3})


def members(op: str, seeds: Seeds) -> Members:
    """The members of ``op``'s request (../shared/rekognition_api.md), each with values that reach code."""
    project = arns(seeds.project_arn)
    dataset = arns(*seeds.dataset_arns)
    version = arns(seeds.version_arn)
    resource = arns(seeds.project_arn, seeds.version_arn, *seeds.dataset_arns)
    ints = st.integers(-3, 12) | st.sampled_from((0, 2**31, 2**63))
    confidence = st.floats(-10, 120) | st.integers(0, 100)
    token = st.sampled_from(("", "AAAA", "eyJ9")) | weird_strings
    tags = st.dictionaries(names(), names(), max_size=3)
    manifest = st.lists(
        st.sampled_from(
            (
                json.dumps({"source-ref": f"s3://{seeds.bucket}/{seeds.image_key}", "label": 0}),
                '{"source-ref": 1}',
                "not json",
                "",
            )
        ),
        max_size=3,
    ).map(lambda lines: b64("\n".join(lines).encode()))
    s3_object = st.fixed_dictionaries(
        {
            "Bucket": st.sampled_from((seeds.bucket, "nope")),
            "Name": st.sampled_from((seeds.manifest_key, "x")),
        }
    )
    paging: Members = {"NextToken": token, "MaxResults": ints}
    table: dict[str, Members] = {
        "CreateProject": {
            "ProjectName": names(),
            "Feature": st.sampled_from(("CUSTOM_LABELS", "CONTENT_MODERATION", "X")),
            "AutoUpdate": st.sampled_from(("ENABLED", "DISABLED", "")),
            "Tags": tags,
        },
        "DescribeProjects": {
            "ProjectNames": st.lists(names(), max_size=11),
            "Features": st.lists(st.sampled_from(("CUSTOM_LABELS", "CONTENT_MODERATION", "X")), max_size=3),
            **paging,
        },
        "DeleteProject": {"ProjectArn": project},
        "CreateDataset": {
            "ProjectArn": project,
            "DatasetType": st.sampled_from(("TRAIN", "TEST", "train", "")),
            "DatasetSource": st.fixed_dictionaries(
                {},
                optional={
                    "GroundTruthManifest": st.fixed_dictionaries({"S3Object": s3_object}),
                    "DatasetArn": dataset,
                },
            ),
            "Tags": tags,
        },
        "DescribeDataset": {"DatasetArn": dataset},
        "ListDatasetEntries": {
            "DatasetArn": dataset,
            "ContainsLabels": st.lists(names(), max_size=11),
            "Labeled": st.booleans(),
            "SourceRefContains": names(),
            "HasErrors": st.booleans(),
            **paging,
        },
        "ListDatasetLabels": {"DatasetArn": dataset, **paging},
        "UpdateDatasetEntries": {
            "DatasetArn": dataset,
            "Changes": st.fixed_dictionaries({"GroundTruth": manifest | weird_strings}),
        },
        "DistributeDatasetEntries": {
            "Datasets": st.lists(st.fixed_dictionaries({"Arn": dataset}), max_size=3),
        },
        "DeleteDataset": {"DatasetArn": dataset},
        "CreateProjectVersion": {
            "ProjectArn": project,
            "VersionName": names(),
            "OutputConfig": st.fixed_dictionaries(
                {}, optional={"S3Bucket": st.sampled_from(("out", "a", "Bad_Bucket")), "S3KeyPrefix": names()}
            ),
            "VersionDescription": names(),
            "KmsKeyId": names(),
            "Tags": tags,
            "TrainingData": json_values,
        },
        "DescribeProjectVersions": {
            "ProjectArn": project,
            "VersionNames": st.lists(names(), max_size=11),
            **paging,
        },
        "DeleteProjectVersion": {"ProjectVersionArn": version},
        "StartProjectVersion": {
            "ProjectVersionArn": version,
            "MinInferenceUnits": ints,
            "MaxInferenceUnits": ints,
        },
        "StopProjectVersion": {"ProjectVersionArn": version},
        "DetectCustomLabels": {
            "ProjectVersionArn": version,
            "Image": images(seeds, decodable=True),
            "MaxResults": ints,
            "MinConfidence": confidence,
        },
        "DetectLabels": {
            "Image": images(seeds, decodable=False),
            "MaxLabels": ints,
            "MinConfidence": confidence,
            "Features": st.lists(st.sampled_from(("GENERAL_LABELS", "IMAGE_PROPERTIES", "X")), max_size=3),
            "Settings": st.fixed_dictionaries(
                {},
                optional={
                    "GeneralLabels": st.fixed_dictionaries(
                        {}, optional={"LabelInclusionFilters": st.lists(names(), max_size=3)}
                    ),
                    "ImageProperties": st.fixed_dictionaries({"MaxDominantColors": ints}),
                },
            ),
        },
        "DetectText": {
            "Image": images(seeds, decodable=False),
            "Filters": st.fixed_dictionaries(
                {},
                optional={
                    "WordFilter": st.fixed_dictionaries(
                        {}, optional={"MinConfidence": confidence, "MinBoundingBoxHeight": confidence}
                    ),
                    "RegionsOfInterest": st.lists(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "BoundingBox": st.fixed_dictionaries(
                                    {"Width": confidence, "Height": confidence, "Left": confidence}
                                ),
                                "Polygon": st.lists(st.fixed_dictionaries({"X": confidence}), max_size=3),
                            },
                        ),
                        max_size=3,
                    ),
                },
            ),
        },
        "DetectModerationLabels": {
            "Image": images(seeds, decodable=False),
            "MinConfidence": confidence,
            "HumanLoopConfig": json_values,
        },
        "DetectFaces": {
            "Image": images(seeds, decodable=True),
            "Attributes": st.lists(
                st.sampled_from(("DEFAULT", "ALL", "GENDER", "AGE")) | weird_strings, max_size=3
            ),
        },
        "CompareFaces": {
            "SourceImage": images(seeds, decodable=True),
            "TargetImage": images(seeds, decodable=True),
            "SimilarityThreshold": confidence,
            "QualityFilter": st.sampled_from(("NONE", "AUTO", "LOW", "MEDIUM", "HIGH", "X")) | weird_strings,
        },
        "CopyProjectVersion": {
            "SourceProjectArn": project,
            "SourceProjectVersionArn": version,
            "DestinationProjectArn": project,
            "VersionName": names(),
            "OutputConfig": st.fixed_dictionaries({}, optional={"S3Bucket": st.sampled_from(("out", "a"))}),
            "KmsKeyId": names(),
            "Tags": tags,
        },
        "PutProjectPolicy": {
            "ProjectArn": project,
            "PolicyName": names(),
            "PolicyRevisionId": st.sampled_from(("", "ab", "0" * 65)) | weird_strings,
            "PolicyDocument": json_values.map(json.dumps) | weird_strings,
        },
        "ListProjectPolicies": {"ProjectArn": project, **paging},
        "DeleteProjectPolicy": {"ProjectArn": project, "PolicyName": names(), "PolicyRevisionId": names()},
        "TagResource": {"ResourceArn": resource, "Tags": tags},
        "UntagResource": {"ResourceArn": resource, "TagKeys": st.lists(names(), max_size=3)},
        "ListTagsForResource": {"ResourceArn": resource},
        **collection_members(seeds, paging, tags, confidence, ints),
    }
    return table[op]


def collection_members(
    seeds: Seeds, paging: Members, tags: st.SearchStrategy[Any], percent: st.SearchStrategy[Any], ints: Any
) -> dict[str, Members]:
    """The face collections' operations: ids of a collection that may exist, faces and users."""
    collection = {"CollectionId": st.sampled_from(("fuzz-faces", "ghost")) | names()}
    face_ids = st.lists(st.uuids().map(str) | weird_strings, max_size=3)
    face_id = st.uuids().map(str) | weird_strings
    user = {"UserId": st.sampled_from(("fuzz-user", "ghost")) | names(), "ClientRequestToken": names()}
    quality = st.sampled_from(("NONE", "AUTO", "LOW", "MEDIUM", "HIGH", "BEST"))
    image = images(seeds, decodable=False)
    return {
        "CreateCollection": {**collection, "Tags": tags},
        "DescribeCollection": collection,
        "ListCollections": paging,
        "DeleteCollection": collection,
        "IndexFaces": {
            **collection,
            "Image": image,
            "ExternalImageId": names(),
            "DetectionAttributes": st.lists(st.sampled_from(("DEFAULT", "ALL", "X")), max_size=2),
            "MaxFaces": ints,
            "QualityFilter": quality,
        },
        "ListFaces": {**collection, **paging, "UserId": names(), "FaceIds": face_ids},
        "DeleteFaces": {**collection, "FaceIds": face_ids},
        "SearchFaces": {**collection, "FaceId": face_id, "MaxFaces": ints, "FaceMatchThreshold": percent},
        "SearchFacesByImage": {
            **collection,
            "Image": image,
            "MaxFaces": ints,
            "FaceMatchThreshold": percent,
            "QualityFilter": quality,
        },
        "CreateUser": {**collection, **user},
        "DeleteUser": {**collection, **user},
        "ListUsers": {**collection, **paging},
        "AssociateFaces": {**collection, **user, "FaceIds": face_ids, "UserMatchThreshold": percent},
        "DisassociateFaces": {**collection, **user, "FaceIds": face_ids},
        "SearchUsers": {
            **collection,
            "UserId": user["UserId"],
            "FaceId": face_id,
            "UserMatchThreshold": percent,
            "MaxUsers": ints,
        },
        "SearchUsersByImage": {
            **collection,
            "Image": image,
            "UserMatchThreshold": percent,
            "MaxUsers": ints,
            "QualityFilter": quality,
        },
    }


# deletions last, so that the seeded project, datasets and version serve the other operations first
ORDER = sorted(OPERATIONS, key=lambda op: (op.startswith("Delete"), op))


def test_every_operation_has_members(fuzz_server: FuzzServer) -> None:
    for op in OPERATIONS:
        assert members(op, fuzz_server.seeds), op


def aws_problem(r: httpx.Response) -> str:
    """What is wrong with an AWS JSON answer below 500, or ''."""
    if not r.headers.get("content-type", "").startswith(CONTENT_TYPE):
        return f"content-type {r.headers.get('content-type')!r}"
    try:
        doc = r.json()
    except ValueError:
        return "the body is not JSON"
    if r.status_code >= 400 and not (
        isinstance(doc, dict) and isinstance(doc.get("__type"), str) and "message" in doc
    ):
        return f"not an AWS error body: {r.text[:200]}"
    if r.status_code >= 400 and r.headers.get("x-amzn-errortype") != doc["__type"]:
        return "X-Amzn-ErrorType differs from __type"
    return ""


@pytest.mark.parametrize("op", ORDER)
def test_aws_json_operation(fuzz_server: FuzzServer, op: str) -> None:
    url = fuzz_server.url
    headers = st.fixed_dictionaries(
        {"X-Amz-Target": st.just(f"RekognitionService.{op}") | st.sampled_from(("", "Rekognition.X", op))},
        optional={"Content-Type": st.sampled_from((CONTENT_TYPE, "application/json", "text/plain", ""))},
    ).map(lambda h: h if h.get("X-Amz-Target") != "" else {"Content-Type": CONTENT_TYPE})
    headers = st.just({"X-Amz-Target": f"RekognitionService.{op}", "Content-Type": CONTENT_TYPE}) | headers

    before = TALLY.found()
    with httpx.Client(timeout=60) as client:

        def check(case: tuple[dict[str, str], bytes]) -> None:
            sent_headers, body = case
            since = TALLY.mark()
            r = client.post(url + "/", content=body, headers=sent_headers)
            request = describe("POST", "/", sent_headers, body)
            TALLY.record(API, request, r.status_code, r.content, since, aws_problem(r))

        run_cases(st.tuples(headers, bodies(members(op, fuzz_server.seeds))), budget(API, len(ORDER)), check)
    assert TALLY.found() == before, "\n".join(TALLY.report())
