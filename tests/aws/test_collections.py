"""Face collections, faces and users through boto3 against the real server with the real face models
(dlib) on photos of the faces dataset: the answers' shapes, pagination, tags, the searches' similarity
against the default thresholds, and each bad request answered with its modelled error."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT, REGION, Server
from tests.aws.test_faces import NO_FACE, _photo, side_by_side

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")
MISSING_FACE = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    """Two photos of person 1, one of person 2."""
    return {
        "alice": _photo("person_01/img1.jpg"),
        "alice2": _photo("person_01/img2.jpg"),
        "bob": _photo("person_02/img3.jpg"),
    }


def _code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def test_collections_are_created_described_listed_tagged_and_deleted(rek: Any, server: Server) -> None:
    names = [server.name("people"), server.name("people")]
    made = rek.create_collection(CollectionId=names[0], Tags={"team": "door"})
    assert made["StatusCode"] == 200 and made["FaceModelVersion"] == "7.0"
    arn = made["CollectionArn"]
    assert arn == f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{names[0]}"
    rek.create_collection(CollectionId=names[1])
    with pytest.raises(ClientError) as e:
        rek.create_collection(CollectionId=names[0])
    assert _code(e) == "ResourceAlreadyExistsException"
    d = rek.describe_collection(CollectionId=names[0])
    assert (d["FaceCount"], d["UserCount"], d["CollectionARN"]) == (0, 0, arn)
    assert d["FaceModelVersion"] == made["FaceModelVersion"] and d["CreationTimestamp"].year >= 2024
    first = rek.list_collections(MaxResults=1)
    assert len(first["CollectionIds"]) == len(first["FaceModelVersions"]) == 1 and first["NextToken"]
    every = [c for p in rek.get_paginator("list_collections").paginate() for c in p["CollectionIds"]]
    assert set(names) <= set(every) and every == sorted(every)
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "door"}
    rek.tag_resource(ResourceArn=arn, Tags={"site": "a"})
    rek.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"site": "a"}
    assert rek.delete_collection(CollectionId=names[0])["StatusCode"] == 200
    for op, params in (
        ("describe_collection", {"CollectionId": names[0]}),
        ("delete_collection", {"CollectionId": names[0]}),
        ("list_tags_for_resource", {"ResourceArn": arn}),
        ("list_faces", {"CollectionId": names[0]}),
    ):
        with pytest.raises(ClientError) as e:
            getattr(rek, op)(**params)
        assert _code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        rek.create_collection(CollectionId="no spaces")
    assert _code(e) == "InvalidParameterException"


def test_faces_are_indexed_listed_searched_and_deleted(
    rek: Any, server: Server, photos: dict[str, bytes]
) -> None:
    name = server.name("faces")
    rek.create_collection(CollectionId=name)
    alice = rek.index_faces(CollectionId=name, Image={"Bytes": photos["alice"]}, ExternalImageId="alice:1")
    [record] = alice["FaceRecords"]
    face = record["Face"]
    assert set(face) == {
        "FaceId",
        "BoundingBox",
        "ImageId",
        "ExternalImageId",
        "Confidence",
        "IndexFacesModelVersion",
    }
    assert face["ExternalImageId"] == "alice:1" and set(record["FaceDetail"]) >= {"BoundingBox", "Landmarks"}
    assert alice["UnindexedFaces"] == [] and alice["FaceModelVersion"] == "7.0"
    bob = rek.index_faces(CollectionId=name, Image={"Bytes": photos["bob"]})["FaceRecords"][0]["Face"]
    group = rek.index_faces(
        CollectionId=name, Image={"Bytes": side_by_side(photos["alice2"], photos["bob"])}, MaxFaces=1
    )
    assert len(group["FaceRecords"]) == 1 and group["UnindexedFaces"][0]["Reasons"] == ["EXCEEDS_MAX_FACES"]
    assert rek.index_faces(CollectionId=name, Image={"Bytes": NO_FACE})["FaceRecords"] == []
    assert rek.describe_collection(CollectionId=name)["FaceCount"] == 3

    found = rek.search_faces_by_image(CollectionId=name, Image={"Bytes": photos["alice2"]})
    matched = [m["Face"]["FaceId"] for m in found["FaceMatches"]]
    assert matched == [group["FaceRecords"][0]["Face"]["FaceId"], face["FaceId"]]  # the same photo first
    assert found["FaceMatches"][1]["Similarity"] >= 80 and found["SearchedFaceConfidence"] > 90
    assert set(found["SearchedFaceBoundingBox"]) == {"Width", "Height", "Left", "Top"}
    same = rek.search_faces(CollectionId=name, FaceId=face["FaceId"], FaceMatchThreshold=0, MaxFaces=10)
    ids = [m["Face"]["FaceId"] for m in same["FaceMatches"]]
    assert face["FaceId"] not in ids and len(ids) == 2 and same["SearchedFaceId"] == face["FaceId"]
    similarities = [m["Similarity"] for m in same["FaceMatches"]]
    assert similarities == sorted(similarities, reverse=True) and ids[-1] == bob["FaceId"]

    page = rek.list_faces(CollectionId=name, MaxResults=2)
    assert len(page["Faces"]) == 2 and page["NextToken"] and page["FaceModelVersion"]
    rest = rek.list_faces(CollectionId=name, MaxResults=2, NextToken=page["NextToken"])
    assert len(rest["Faces"]) == 1 and "NextToken" not in rest
    by_id = rek.list_faces(CollectionId=name, FaceIds=[bob["FaceId"]])["Faces"]
    assert [f["FaceId"] for f in by_id] == [bob["FaceId"]]
    deleted = rek.delete_faces(CollectionId=name, FaceIds=[bob["FaceId"], MISSING_FACE])
    assert deleted["DeletedFaces"] == [bob["FaceId"]]
    assert deleted["UnsuccessfulFaceDeletions"] == [{"FaceId": MISSING_FACE, "Reasons": ["FACE_NOT_FOUND"]}]
    after = rek.search_faces_by_image(CollectionId=name, Image={"Bytes": photos["bob"]}, FaceMatchThreshold=0)
    assert bob["FaceId"] not in [m["Face"]["FaceId"] for m in after["FaceMatches"]]
    rek.delete_collection(CollectionId=name)


def test_users_hold_faces_and_are_searched(rek: Any, server: Server, photos: dict[str, bytes]) -> None:
    name = server.name("users")
    rek.create_collection(CollectionId=name)
    ids = {
        k: rek.index_faces(CollectionId=name, Image={"Bytes": v})["FaceRecords"][0]["Face"]["FaceId"]
        for k, v in photos.items()
    }
    rek.create_user(CollectionId=name, UserId="alice")
    rek.create_user(CollectionId=name, UserId="bob", ClientRequestToken="t-1")
    rek.create_user(CollectionId=name, UserId="bob", ClientRequestToken="t-1")  # a retry
    with pytest.raises(ClientError) as e:
        rek.create_user(CollectionId=name, UserId="alice")
    assert _code(e) == "ConflictException"
    assert rek.list_users(CollectionId=name)["Users"] == [
        {"UserId": "alice", "UserStatus": "CREATED"},
        {"UserId": "bob", "UserStatus": "CREATED"},
    ]
    first = rek.associate_faces(CollectionId=name, UserId="alice", FaceIds=[ids["alice"]])
    assert first["AssociatedFaces"] == [{"FaceId": ids["alice"]}] and first["UserStatus"] == "ACTIVE"
    more = rek.associate_faces(CollectionId=name, UserId="alice", FaceIds=[ids["alice2"], ids["bob"]])
    assert more["AssociatedFaces"] == [{"FaceId": ids["alice2"]}]
    [low] = more["UnsuccessfulFaceAssociations"]
    assert (
        low["FaceId"] == ids["bob"] and low["Reasons"] == ["LOW_MATCH_CONFIDENCE"] and low["Confidence"] < 75
    )
    rek.associate_faces(CollectionId=name, UserId="bob", FaceIds=[ids["bob"]])
    taken = rek.associate_faces(CollectionId=name, UserId="bob", FaceIds=[ids["alice"]])
    assert taken["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"]
    assert rek.list_faces(CollectionId=name, UserId="alice")["Faces"][0]["UserId"] == "alice"
    assert rek.describe_collection(CollectionId=name)["UserCount"] == 2

    by_face = rek.search_users(CollectionId=name, FaceId=ids["alice2"])
    assert [m["User"] for m in by_face["UserMatches"]] == [{"UserId": "alice", "UserStatus": "ACTIVE"}]
    assert by_face["SearchedFace"] == {"FaceId": ids["alice2"]}
    by_user = rek.search_users(CollectionId=name, UserId="alice", UserMatchThreshold=0)
    assert [m["User"]["UserId"] for m in by_user["UserMatches"]] == ["bob"]
    by_image = rek.search_users_by_image(
        CollectionId=name, Image={"Bytes": side_by_side(photos["bob"], photos["alice2"])}
    )
    assert by_image["UserMatches"][0]["User"]["UserId"] in {"alice", "bob"}
    assert by_image["UnsearchedFaces"][0]["Reasons"] == ["FACE_NOT_LARGEST"]
    assert set(by_image["SearchedFace"]["FaceDetail"]) >= {"BoundingBox", "Confidence"}

    deleted = rek.delete_faces(CollectionId=name, FaceIds=[ids["alice"]])
    assert deleted["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["ASSOCIATED_TO_AN_EXISTING_USER"]
    gone = rek.disassociate_faces(CollectionId=name, UserId="alice", FaceIds=[ids["alice"], ids["bob"]])
    assert gone["DisassociatedFaces"] == [{"FaceId": ids["alice"]}]
    assert gone["UnsuccessfulFaceDisassociations"][0]["Reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"]
    rek.delete_user(CollectionId=name, UserId="bob")
    assert "UserId" not in rek.list_faces(CollectionId=name, FaceIds=[ids["bob"]])["Faces"][0]
    with pytest.raises(ClientError) as e:
        rek.delete_user(CollectionId=name, UserId="bob")
    assert _code(e) == "ResourceNotFoundException"
    rek.delete_collection(CollectionId=name)


def test_bad_requests_get_rekognitions_errors(
    rek: Any, rek_raw: Any, server: Server, photos: dict[str, bytes]
) -> None:
    name = server.name("errors")
    rek.create_collection(CollectionId=name)
    face = rek.index_faces(CollectionId=name, Image={"Bytes": photos["alice"]})["FaceRecords"][0]["Face"]
    photo = {"Bytes": photos["alice2"]}
    c, fid, bad = {"CollectionId": name}, face["FaceId"], "InvalidParameter"
    nowhere = {"S3Object": {"Bucket": "nobucket", "Name": "x.jpg"}}
    cases: list[tuple[Any, str, dict[str, Any], str]] = [
        (rek, "index_faces", {"CollectionId": "nope-none", "Image": photo}, "ResourceNotFound"),
        (rek, "index_faces", {**c, "Image": photo, "QualityFilter": "BEST"}, bad),
        (rek, "index_faces", {**c, "Image": photo, "ExternalImageId": "a b"}, bad),
        (rek, "index_faces", {**c, "Image": nowhere}, "InvalidS3Object"),
        (rek, "index_faces", {**c, "Image": {"Bytes": b"not an image"}}, "InvalidImageFormat"),
        (rek, "search_faces_by_image", {**c, "Image": {"Bytes": NO_FACE}}, bad),
        (rek, "search_faces", {**c, "FaceId": MISSING_FACE}, "ResourceNotFound"),
        (rek, "search_faces", {**c, "FaceId": "not-a-face"}, bad),
        (rek, "search_faces", {**c, "FaceId": fid, "MaxFaces": 5000}, bad),
        (rek_raw, "search_faces", {**c, "FaceId": fid, "FaceMatchThreshold": 101}, bad),
        (rek, "list_faces", {**c, "NextToken": "garbage"}, "InvalidPaginationToken"),
        (rek, "associate_faces", {**c, "UserId": "ghost", "FaceIds": [fid]}, "ResourceNotFound"),
        (rek, "search_users", c, bad),
        (rek, "search_users", {**c, "UserId": "ghost"}, "ResourceNotFound"),
        (rek, "list_users", {**c, "MaxResults": 501}, bad),
        (rek_raw, "delete_faces", c, bad),
    ]
    for i, (client, op, params, code) in enumerate(cases):
        with pytest.raises(ClientError) as e:
            getattr(client, op)(**params)
        status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (_code(e), status) == (f"{code}Exception", 400), (i, op)
    rek.delete_collection(CollectionId=name)


def test_a_user_past_its_faces_limit_is_a_service_quota_error(
    rek: Any, server: Server, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from visionloop.core import collections

    monkeypatch.setattr(collections, "MAX_FACES_PER_USER", 1)  # the server runs in this process
    name = server.name("quota")
    rek.create_collection(CollectionId=name)
    ids = [
        rek.index_faces(CollectionId=name, Image={"Bytes": photos[k]})["FaceRecords"][0]["Face"]["FaceId"]
        for k in ("alice", "alice2")
    ]
    rek.create_user(CollectionId=name, UserId="alice")
    rek.associate_faces(CollectionId=name, UserId="alice", FaceIds=ids[:1])
    with pytest.raises(ClientError) as e:
        rek.associate_faces(CollectionId=name, UserId="alice", FaceIds=ids[1:])
    assert _code(e) == "ServiceQuotaExceededException"
    rek.delete_collection(CollectionId=name)
