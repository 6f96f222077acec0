"""The classification engine's progress comes from work done: images read and embedded out of all of them
as they go (not one step per view after a long silence), then the fitting, and it never goes back."""

from __future__ import annotations

from pathlib import Path

from tests.engines.conftest import make_jpeg, synthetic_spec
from visionloop.core.training import stage_kind
from visionloop.engines.artifact import PROGRESS_CHUNK
from visionloop.engines.classification import READ_SHARE, ClassificationEngine

N_TRAIN = PROGRESS_CHUNK + 24  # more than one chunk of images to embed


def test_progress_is_monotonic_and_reports_reading_and_embedding_as_they_go(
    tmp_path: Path, onnx_cache: Path
) -> None:
    images = {f"{i:064x}": make_jpeg(i, size=(96, 80)) for i in range(N_TRAIN + 12)}
    spec = synthetic_spec(
        images,
        N_TRAIN,
        # 152 images of two labels: patch scores are tried too (at 128 px here, to be quick)
        {"views": ["full"], "predict_views": ["full"], "l2_grid": [0.01, 0.1], "patch_size": 128},
    )
    (tmp_path / "onnx").symlink_to(onnx_cache)  # the session's exported backbones
    reports: list[tuple[float, str]] = []
    ClassificationEngine(tmp_path, num_threads=1).train(
        spec, images.__getitem__, lambda f, stage: reports.append((f, stage))
    )
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions), "progress never goes back"
    stages = [stage for _, stage in reports]
    assert (
        f"patch scores ({N_TRAIN} of {N_TRAIN} images)" in stages and "patch scores (fold 5 of 5)" in stages
    )
    assert fractions[-1] == 1.0 and reports[-1][1] == "done"
    reading = [f for f, stage in reports if stage_kind(stage) == "reading images"]
    assert len(reading) >= 10 and any(0 < f < READ_SHARE for f in reading)
    assert f"reading images ({N_TRAIN} of {N_TRAIN})" in [stage for _, stage in reports]
    embedding = [(f, stage) for f, stage in reports if stage_kind(stage) == "embedding images"]
    assert [stage for _, stage in embedding] == [
        f"embedding images (0 of {N_TRAIN})",
        f"embedding images (0 of {N_TRAIN})",  # again once the network is loaded
        f"embedding images ({PROGRESS_CHUNK} of {N_TRAIN})",
        f"embedding images ({N_TRAIN} of {N_TRAIN})",
    ]
    loading = [stage for _, stage in reports].index("loading the network (efficientnet-lite0)")
    assert reports[loading - 1][1] == f"embedding images (0 of {N_TRAIN})", "a stage before the first chunk"
    assert READ_SHARE <= embedding[0][0] == embedding[1][0] < embedding[2][0] < embedding[3][0] < 0.8
    assert any(stage_kind(stage) == "cross-validating" for _, stage in reports)
