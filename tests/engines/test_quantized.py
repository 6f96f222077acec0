"""EfficientNet-Lite0 in INT8: quantized from the bundled fp32 export with generated calibration images;
it must embed like the fp32 network, keep its class across views, and refuse fine-tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from visionloop.engines.backbones import Backbone
from visionloop.engines.onnx_runtime import EXACT_INT8, OnnxSession
from visionloop.engines.quantized import QuantizedBackbone, calibration_images
from visionloop.engines.recipe import view_backbone
from visionloop.engines.registry import create_backbone
from visionloop.errors import Unavailable

NAME = "efficientnet-lite0-int8"


@pytest.fixture(scope="module")
def lite0_int8(onnx_cache: Path) -> Backbone:
    created = create_backbone(NAME, cache_dir=onnx_cache, num_threads=1)
    created.warm_up()
    return created


def test_calibration_images_are_fixed_and_in_the_input_range() -> None:
    a, b = calibration_images(224, n=4), calibration_images(224, n=4)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 3, 224, 224) and a.dtype == np.float32
    assert a.min() >= -1.0 and a.max() <= 1.0 and a.std() > 0.3
    assert not np.array_equal(a, calibration_images(224, n=4, seed=1))


def test_embeds_like_the_fp32_network(lite0_int8: Backbone, lite0: Backbone, jpegs: list[bytes]) -> None:
    quantized, full = lite0_int8.embed(jpegs), lite0.embed(jpegs)
    assert quantized.shape == full.shape == (len(jpegs), 1280)
    cosine = (quantized * full).sum(1) / np.linalg.norm(quantized, axis=1) / np.linalg.norm(full, axis=1)
    assert cosine.min() > 0.95, cosine
    assert not np.array_equal(quantized, full)  # it is not the fp32 graph under another name
    assert lite0_int8.spec.version != lite0.spec.version  # so cached embeddings never mix


def test_sessions_use_exact_int8_kernels(tmp_path: Path) -> None:
    """Without it, x86 CPUs lacking VNNI saturate INT8 sums: embeddings at cosine 0.6–0.9 to fp32's (AVX2
    AMD EPYC), where test_embeds_like_the_fp32_network failed; CPUs with VNNI are exact either way."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    options = OnnxSession(path, 1)._session.get_session_options()
    assert options.get_session_config_entry(EXACT_INT8[0]) == EXACT_INT8[1] == "1"


def test_graph_is_quantized_and_cached(lite0_int8: Backbone, lite0: Backbone) -> None:
    import onnx

    path = lite0_int8.onnx_path()
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert path != lite0.onnx_path() and path.stat().st_size < lite0.onnx_path().stat().st_size
    assert lite0_int8.onnx_path() == path  # exported once


def test_views_run_on_the_same_int8_runtime(lite0_int8: Backbone, jpegs: list[bytes]) -> None:
    view = view_backbone(NAME, "tile-tl", base=lite0_int8)
    assert isinstance(view, QuantizedBackbone)
    assert view.session is lite0_int8.session
    assert view.embed(jpegs[:2]).shape == (2, 1280)


def test_cannot_be_fine_tuned(lite0_int8: Backbone) -> None:
    with pytest.raises(Unavailable, match="cannot be fine-tuned"):
        lite0_int8.torch_module()
