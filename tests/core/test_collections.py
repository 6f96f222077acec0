"""Face collections' use cases with a stand-in face analyser (a real FaceAnalyserPort: faces chosen by
image) on the real repository: indexing with the quality filter and MaxFaces, searches by face and by
image with the similarity of core.faces, users and their faces, and the errors Rekognition answers."""

from __future__ import annotations

import math

import pytest

from tests.core.test_faces import Faces
from tests.factories import image_bytes
from visionloop.core import collections as col
from visionloop.core.faces import similarity
from visionloop.core.records.analysis import BoundingBox
from visionloop.core.records.collections import Collection, UserStatus
from visionloop.core.records.faces import FaceAttribute, FaceDetail, FacePose, FaceQuality
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, InvalidInput, NotFound, QuotaExceeded

MATCH = 0.4
ANN, ANN2, BOB, TINY = (
    image_bytes(200, 160, (200, 0, 0)),
    image_bytes(200, 160, (0, 200, 0)),
    image_bytes(200, 160, (0, 0, 200)),
    image_bytes(200, 160, (90, 90, 90)),
)
GROUP, EMPTY = image_bytes(220, 160, (10, 200, 200)), image_bytes(200, 160, (250, 250, 250))


def unit(angle: float) -> tuple[float, float]:
    return (math.cos(angle), math.sin(angle))


def face(vector: tuple[float, ...], size: float = 0.5, confidence: float = 99.9) -> FaceDetail:
    return FaceDetail(
        box=BoundingBox(0.1, 0.1, size, size),
        confidence=confidence,
        landmarks=(),
        pose=FacePose(0, 0, 0),
        quality=FaceQuality(60, 70),
        attributes=(FaceAttribute("EyesOpen", True, 95.0),),
        embedding=vector,
    )


def fake_faces(version: str = "fake-faces-1") -> Faces:
    """Faces by image: ann (two photos 0.1 apart), bob (far from ann), a group photo of both and a
    tiny third face, a photo whose only face is tiny, and an empty photo."""
    by_image = {
        ANN: [face(unit(0.0))],
        ANN2: [face(unit(0.1))],
        BOB: [face(unit(2.0))],
        GROUP: [face(unit(0.05), 0.4), face(unit(2.05), 0.3), face(unit(1.0), 0.05)],
        TINY: [face(unit(0.0), 0.05)],
    }
    return Faces(by_image, version=version, match_distance=MATCH)


@pytest.fixture
def analyser() -> Faces:
    return fake_faces()


@pytest.fixture
def svc(services: Services) -> Services:
    return services


def make(svc: Services, analyser: Faces, name: str = "people") -> Collection:
    return col.create_collection(svc, lambda kind: analyser, name, {"team": "a"})


def test_collections_are_created_described_listed_and_deleted(svc: Services, analyser: Faces) -> None:
    made = make(svc, analyser)
    assert (made.face_model_version, made.embedding_dim, made.tags) == ("fake-faces-1", 2, {"team": "a"})
    with pytest.raises(AlreadyExists):
        make(svc, analyser)
    with pytest.raises(InvalidInput):
        make(svc, analyser, "no spaces")
    col.tag_collection(svc, "people", {"x": "1"})
    col.untag_collection(svc, "people", ["team"])
    assert col.describe_collection(svc, "people").tags == {"x": "1"}
    col.index_faces(svc, lambda kind: analyser, "people", ANN)
    col.create_user(svc, "people", "ann")
    got = col.describe_collection(svc, "people")
    assert (got.face_count, got.user_count) == (1, 1)
    assert [c.name for c in col.list_collections(svc)] == ["people"]
    assert col.collection_arn("r", "1", "people") == "arn:aws:rekognition:r:1:collection/people"
    col.delete_collection(svc, "people")
    with pytest.raises(NotFound):
        col.describe_collection(svc, "people")
    again = make(svc, analyser)
    assert (again.face_count, again.user_count) == (0, 0)


def test_index_faces_keeps_the_largest_that_pass_the_filter(svc: Services, analyser: Faces) -> None:
    make(svc, analyser)
    src = lambda kind: analyser  # noqa: E731
    r = col.index_faces(svc, src, "people", GROUP, col.IndexOptions(external_image_id="group:1", max_faces=1))
    assert len(r.indexed) == 1 and r.indexed[0].face.external_image_id == "group:1"
    assert r.indexed[0].detail.embedding is None and r.indexed[0].detail.attributes == ()
    assert [u.reasons for u in r.unindexed] == [("EXCEEDS_MAX_FACES",), ("SMALL_BOUNDING_BOX",)]
    every = col.index_faces(
        svc, src, "people", GROUP, col.IndexOptions(quality_filter="NONE", attributes=("ALL",))
    )
    assert len(every.indexed) == 3 and every.unindexed == ()
    assert every.indexed[0].detail.attributes == (FaceAttribute("EyesOpen", True, 95.0),)
    image_ids = {f.face.image_id for f in every.indexed}
    assert len(image_ids) == 1 and image_ids != {r.indexed[0].face.image_id}
    assert len({f.face.face_id for f in every.indexed}) == 3
    assert col.index_faces(svc, src, "people", EMPTY).indexed == ()
    _, listed = col.list_faces(svc, "people")
    assert len(listed) == 4 and listed[0].face_id == r.indexed[0].face.face_id
    for bad in (
        col.IndexOptions(external_image_id="no spaces"),
        col.IndexOptions(max_faces=0),
        col.IndexOptions(quality_filter="BEST"),
        col.IndexOptions(attributes=("HAIR",)),
    ):
        with pytest.raises(InvalidInput):
            col.index_faces(svc, src, "people", ANN, bad)
    with pytest.raises(NotFound):
        col.index_faces(svc, src, "nobody", ANN)


def test_searches_by_face_and_by_image(svc: Services, analyser: Faces) -> None:
    make(svc, analyser)
    src = lambda kind: analyser  # noqa: E731
    ann = col.index_faces(svc, src, "people", ANN).indexed[0].face
    ann2 = col.index_faces(svc, src, "people", ANN2).indexed[0].face
    bob = col.index_faces(svc, src, "people", BOB).indexed[0].face
    found = col.search_faces(svc, src, "people", ann.face_id)
    assert [m.face.face_id for m in found.matches] == [ann2.face_id]  # itself left out, bob too far
    expected = similarity(2 * math.sin(0.05), MATCH)
    assert (
        found.matches[0].similarity == pytest.approx(expected, abs=1e-3) and found.version == "fake-faces-1"
    )
    every = col.search_faces(svc, src, "people", ann.face_id, col.SearchOptions(threshold=0))
    assert [m.face.face_id for m in every.matches] == [ann2.face_id, bob.face_id]
    by_image = col.search_faces_by_image(svc, src, "people", GROUP, col.SearchOptions(max_faces=1))
    assert [m.face.face_id for m in by_image.matches] == [ann.face_id]  # the group's largest face is ann
    assert by_image.searched is not None and by_image.searched.embedding is None
    with pytest.raises(InvalidInput, match="no faces"):
        col.search_faces_by_image(svc, src, "people", EMPTY)
    with pytest.raises(InvalidInput, match="quality filter"):
        col.search_faces_by_image(svc, src, "people", TINY, col.SearchOptions(quality_filter="HIGH"))
    with pytest.raises(NotFound):
        col.search_faces(svc, src, "people", "00000000-0000-0000-0000-000000000000")
    for bad in (
        col.SearchOptions(max_faces=0),
        col.SearchOptions(threshold=101),
        col.SearchOptions(threshold=math.nan),
    ):
        with pytest.raises(InvalidInput):
            col.search_faces(svc, src, "people", ann.face_id, bad)
    other = fake_faces(version="fake-faces-2")
    with pytest.raises(InvalidInput, match="do not compare"):
        col.search_faces(svc, lambda kind: other, "people", ann.face_id)


def test_deleting_faces_spares_a_users_faces(svc: Services, analyser: Faces) -> None:
    make(svc, analyser)
    src = lambda kind: analyser  # noqa: E731
    ann = col.index_faces(svc, src, "people", ANN).indexed[0].face.face_id
    bob = col.index_faces(svc, src, "people", BOB).indexed[0].face.face_id
    col.create_user(svc, "people", "ann")
    col.associate_faces(svc, src, "people", "ann", [ann])
    missing = "00000000-0000-0000-0000-000000000000"
    deleted, failed = col.delete_faces(svc, "people", [ann, bob, missing])
    assert deleted == [bob]
    assert [(f.face_id, f.reasons, f.user_id) for f in failed] == [
        (ann, ("ASSOCIATED_TO_AN_EXISTING_USER",), "ann"),
        (missing, ("FACE_NOT_FOUND",), None),
    ]
    with pytest.raises(InvalidInput):
        col.delete_faces(svc, "people", ["not-a-face-id"])


def test_users_hold_similar_faces_and_are_searched(svc: Services, analyser: Faces) -> None:
    make(svc, analyser)
    src = lambda kind: analyser  # noqa: E731
    ann, ann2, bob = (
        col.index_faces(svc, src, "people", i).indexed[0].face.face_id for i in (ANN, ANN2, BOB)
    )
    assert col.create_user(svc, "people", "ann").status is UserStatus.CREATED
    col.create_user(svc, "people", "bob")
    with pytest.raises(AlreadyExists):
        col.create_user(svc, "people", "ann")
    first = col.associate_faces(svc, src, "people", "ann", [ann])
    assert (first.done, first.status) == ((ann,), UserStatus.ACTIVE)
    more = col.associate_faces(svc, src, "people", "ann", [ann2, bob, "00000000-0000-0000-0000-000000000000"])
    assert more.done == (ann2,)
    assert [(f.reasons, f.user_id) for f in more.failed] == [
        (("LOW_MATCH_CONFIDENCE",), "ann"),
        (("FACE_NOT_FOUND",), None),
    ]
    assert more.failed[0].confidence is not None and more.failed[0].confidence < 75
    col.associate_faces(svc, src, "people", "bob", [bob])
    taken = col.associate_faces(svc, src, "people", "bob", [ann])
    assert [(f.reasons, f.user_id) for f in taken.failed] == [(("ASSOCIATED_TO_A_DIFFERENT_USER",), "ann")]
    assert [(u.user_id, u.face_count) for u in col.list_users(svc, "people")] == [("ann", 2), ("bob", 1)]
    by_face = col.search_users(svc, src, "people", face_id=ann)
    assert [m.user.user_id for m in by_face.matches] == ["ann"]
    by_user = col.search_users(svc, src, "people", user_id="ann", options=col.UserSearchOptions(threshold=0))
    assert [m.user.user_id for m in by_user.matches] == ["bob"]  # the user itself left out
    by_image = col.search_users_by_image(svc, src, "people", ANN2)
    assert [m.user.user_id for m in by_image.matches] == ["ann"] and by_image.matches[0].similarity > 99
    group = col.search_users_by_image(svc, src, "people", GROUP, col.UserSearchOptions(quality_filter="LOW"))
    assert [m.user.user_id for m in group.matches] == ["ann"]
    assert [u.reasons for u in group.unsearched] == [("FACE_NOT_LARGEST",), ("SMALL_BOUNDING_BOX",)]
    with pytest.raises(InvalidInput):
        col.search_users(svc, src, "people", user_id="ann", face_id=ann)
    gone = col.disassociate_faces(svc, "people", "ann", [ann2, bob])
    assert gone.done == (ann2,) and [f.reasons for f in gone.failed] == [("ASSOCIATED_TO_A_DIFFERENT_USER",)]
    col.delete_user(svc, "people", "bob")
    _, faces = col.list_faces(svc, "people", user_id="bob")
    assert faces == []
    with pytest.raises(NotFound):
        col.associate_faces(svc, src, "people", "bob", [bob])


def test_a_user_holds_at_most_100_faces(
    svc: Services, analyser: Faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(svc, analyser)
    src = lambda kind: analyser  # noqa: E731
    monkeypatch.setattr(col, "MAX_FACES_PER_USER", 1)
    ann, ann2 = (col.index_faces(svc, src, "people", i).indexed[0].face.face_id for i in (ANN, ANN2))
    col.create_user(svc, "people", "ann")
    col.associate_faces(svc, src, "people", "ann", [ann])
    with pytest.raises(QuotaExceeded):
        col.associate_faces(svc, src, "people", "ann", [ann2])
