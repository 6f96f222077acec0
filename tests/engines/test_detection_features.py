"""The detector's backbone through ONNX Runtime: the same maps as torch's at any input size and batch,
mirrored on request, and the graph exported once per size into the cache folder it is given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from visionloop.engines.detection import onnx_pyramid
from visionloop.engines.detection.features import STRIDES, FeaturePyramid, image_array

# torch and ONNX Runtime (with its fused, reordered graph) differ by ~2e-5 of a map's largest value
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def pyramid(onnx_cache: Path) -> FeaturePyramid:
    return FeaturePyramid(cache_dir=onnx_cache)


def assert_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        scale = float(w.abs().max())
        assert scale > 0 and float((g - w).abs().max()) <= RELATIVE_TOLERANCE * scale


@pytest.mark.parametrize("size", [224, 288])
def test_onnx_maps_are_torch_maps_at_each_size_and_batch(
    pyramid: FeaturePyramid, jpegs: list[bytes], size: int
) -> None:
    arrays = np.stack([image_array(data, size) for data in jpegs[:3]])
    got = pyramid.of_arrays(arrays)
    assert [tuple(g.shape) for g in got] == [
        (3, c, size // s, size // s) for c, s in zip(pyramid.channels, STRIDES, strict=True)
    ]
    assert_close(got, pyramid.torch_features(torch.from_numpy(arrays)))
    assert_close(pyramid.of_images(jpegs[:1], size), pyramid.torch_features(torch.from_numpy(arrays[:1])))


def test_flip_mirrors_the_image_before_the_network(pyramid: FeaturePyramid, jpegs: list[bytes]) -> None:
    arrays = np.stack([image_array(jpegs[3], 224)])
    mirrored = torch.from_numpy(arrays[..., ::-1].copy())
    assert_close(pyramid.of_arrays(arrays, flip=True), pyramid.torch_features(mirrored))
    assert not torch.allclose(pyramid.of_arrays(arrays, flip=True)[0], pyramid.of_arrays(arrays)[0])


def test_the_graph_is_exported_once_per_size_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpegs: list[bytes]
) -> None:
    FeaturePyramid(cache_dir=tmp_path).warm_up(256)
    exported = sorted(p.name for p in tmp_path.glob("*.onnx"))
    assert len(exported) == 1 and "pyramid" in exported[0] and "256px" in exported[0]

    def no_export(*args: object) -> bytes:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_pyramid, "export_onnx", no_export)
    again = FeaturePyramid(cache_dir=tmp_path)
    assert [f.shape[-1] for f in again.of_images(jpegs[:1], 256)] == [256 // s for s in STRIDES]
    with pytest.raises(AssertionError, match="exported again"):
        again.warm_up(320)  # another size is another graph


def test_only_square_rgb_batches_are_taken(pyramid: FeaturePyramid) -> None:
    with pytest.raises(ValueError, match="square"):
        pyramid.of_arrays(np.zeros((1, 3, 224, 256), dtype=np.float32))
