"""A detection project for the console's model pages, trained through the real use cases with the fake
colour engine (engines.fake: it finds coloured rectangles on a grey background).

TEST holds, on purpose, one image of every outcome: right boxes, a red rectangle whose true box says
blue (a false positive for red and a missed blue box) and a grey image whose red box shows nothing (a
missed box). The wrong red prediction has the same rectangle as a right one, so it scores the same and
red's assumed threshold, tuned for the best F1, keeps it."""

from __future__ import annotations

import io

from PIL import Image

from tests.factories import make_project
from visionloop.core.datasets import add_image
from visionloop.core.entities import ModelVersion, TaskType, VersionStatus
from visionloop.core.manifests import PixelBox
from visionloop.core.services import Services
from visionloop.core.training import TrainingOptions, request_training
from visionloop.engines.fake import ColourEngine
from visionloop.workflows.worker import run_job

SIZE = (160, 120)
COLOURS = {"red": (210, 30, 30), "blue": (30, 40, 210)}
Rect = tuple[str, int, int, int, int]  # colour, left, top, width, height in pixels


def scene(rects: list[Rect], mark: int) -> bytes:
    """A grey PNG with the rectangles; ``mark`` shifts one corner pixel by a shade too faint to be seen
    as an object, so that equal scenes are different images."""
    img = Image.new("RGB", SIZE, (128, 128, 128))
    for colour, left, top, width, height in rects:
        img.paste(COLOURS[colour], (left, top, left + width, top + height))
    img.putpixel((0, 0), (128, 128, 128 - mark % 5))
    img.putpixel((SIZE[0] - 1, 0), (128, 128 - mark // 5, 128))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def boxes(rects: list[Rect], labels: list[str] | None = None) -> list[PixelBox]:
    return [PixelBox(labels[i] if labels else r[0], r[1], r[2], r[3], r[4]) for i, r in enumerate(rects)]


RED_A: Rect = ("red", 20, 20, 50, 40)
TEST_SCENES: dict[str, tuple[list[Rect], list[PixelBox]]] = {
    "right-red.png": ([RED_A], boxes([RED_A])),
    "right-blue.png": ([("blue", 90, 50, 50, 50)], boxes([("blue", 90, 50, 50, 50)])),
    "right-both.png": (
        [("red", 10, 60, 40, 40), ("blue", 100, 10, 40, 40)],
        boxes([("red", 10, 60, 40, 40), ("blue", 100, 10, 40, 40)]),
    ),
    "red-said-blue.png": ([RED_A], boxes([RED_A], ["blue"])),
    "nothing-there.png": ([], [PixelBox("red", 60, 40, 40, 40)]),
}


def detection_project(svc: Services, name: str = "shapes") -> None:
    """Project ``name`` (object detection): 12 TRAIN scenes with one rectangle each, the TEST scenes."""
    make_project(svc, name, TaskType.DETECTION)
    for i in range(12):
        colour = "red" if i % 2 == 0 else "blue"
        rect: Rect = (colour, 8 + 7 * i, 6 + 5 * (i % 6), 40 + i, 36 + (i % 4) * 5)
        add_image(svc, name, scene([rect], i), f"train-{i}.png", boxes=boxes([rect]))
    for n, (file_name, (rects, truth)) in enumerate(TEST_SCENES.items()):
        add_image(svc, name, scene(rects, 20 + n), file_name, boxes=truth, dataset_type="TEST")


def train_detector(svc: Services, project: str = "shapes", name: str | None = None) -> ModelVersion:
    """A version of the detection project trained by the fake colour engine through the worker."""
    version, job = request_training(svc, project, TrainingOptions(version_name=name))
    claimed = svc.repo.claim_job(svc.clock.now(), job.id)
    assert claimed is not None
    run_job(svc, ColourEngine(), claimed, "us-east-1", "123456789012")
    version = svc.repo.get_version_by_id(version.id)
    assert version.status is VersionStatus.TRAINING_COMPLETED, version.status_message
    return version
