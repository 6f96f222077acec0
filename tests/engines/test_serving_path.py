"""The serving path of the default model (issue 12): an inference unit predicts with every view of an
image in one network call, from one decoding, a view and its mirror image sharing one resampling, and
with the threads the unit is given. None of that may change what it predicts: the pixels must be those
of each view preprocessed alone, and the probabilities those of the plain view-by-view path."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from visionloop.engines.artifact import FittedClassifier, logits_to_proba
from visionloop.engines.backbones import Backbone
from visionloop.engines.heads import LinearHead
from visionloop.engines.preprocess import (
    Preprocessing,
    default_workers,
    normalised_levels,
    preprocess_image,
    preprocess_views,
    preprocess_views_batch,
)
from visionloop.engines.quantized import QuantizedBackbone, quantize_levels
from visionloop.engines.recipe import MIRRORED_TILE_VIEWS, TILE_VIEWS, VIEWS, TrainingRecipe, view_backbone
from visionloop.engines.registry import create_backbone

from .conftest import make_jpeg

LABELS = ("Apple", "Banana", "Carrots", "Lemon")
LITE = Preprocessing(input_size=224, resize_size=224, mean=(127.0,) * 3, std=(128.0,) * 3)
PER_LABEL = 4


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """Real photos of four labels (348 px store photos, a few 348 x 464), the kind the bench serves."""
    root = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "grocery-produce"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the shared datasets are not on this machine")
    picked: list[bytes] = []
    for label in LABELS:
        files = sorted((root / label).glob("*.jpg"))
        picked += [f.read_bytes() for f in files[:: max(1, len(files) // PER_LABEL)][:PER_LABEL]]
    return picked


@pytest.fixture(scope="module")
def classifier(photos: list[bytes], onnx_cache: Path) -> FittedClassifier:
    """The default recipe's model (INT8 Lite0, seven views, linear head), its head fitted on the plain
    path's embeddings of the photos: a trained model without cross-validation's cost."""
    recipe = dataclasses.replace(TrainingRecipe().resolved(), num_threads=1)
    assert recipe.predict_views == TILE_VIEWS
    clf = FittedClassifier(recipe, len(LABELS), multi_label=False, cache_dir=onnx_cache)
    [name] = recipe.backbones or ()
    features = [clf._view_backbone(name, view).embed(photos, flip=VIEWS[view].flip) for view in TILE_VIEWS]
    y = np.repeat(np.arange(len(LABELS)), PER_LABEL)
    clf.head_ = LinearHead(1e-2, n_labels=len(LABELS)).fit(np.vstack(features), np.tile(y, len(TILE_VIEWS)))
    clf.kind_ = "linear"
    return clf


def test_every_view_of_one_decoding_has_the_pixels_of_the_view_alone(photos: list[bytes]) -> None:
    base = create_backbone("efficientnet-lite0-int8", num_threads=1)
    views = [(view_backbone("", v, base=base).spec.preprocessing, VIEWS[v].flip) for v in MIRRORED_TILE_VIEWS]
    odd = [make_jpeg(1, size=(97, 513)), make_jpeg(2, size=(1200, 900)), make_jpeg(3, size=(224, 224))]
    for data in [*photos, *odd]:
        outs = [np.empty((3, p.input_size, p.input_size), np.float32) for p, _ in views]
        preprocess_views(data, views, outs)
        for (p, flip), out in zip(views, outs, strict=True):
            np.testing.assert_array_equal(out, preprocess_image(data, p, flip=flip))


def test_one_call_for_all_views_predicts_what_the_views_one_by_one_do(
    classifier: FittedClassifier, photos: list[bytes]
) -> None:
    def one_by_one(backbone: Backbone, images: Sequence[bytes], flip: bool) -> np.ndarray:
        return backbone.embed(images, flip=flip)

    served = classifier.predict_proba(photos)  # what a unit runs: one network call, seven views
    full = classifier._view_backbone("efficientnet-lite0-int8", "full")
    assert isinstance(full, QuantizedBackbone) and full._runtime is not None
    assert full._runtime._pixels is not None  # it ran on quantized pixels, not on float images
    plain = classifier.predict_proba(photos, embed=one_by_one)
    np.testing.assert_allclose(served, plain, rtol=0, atol=1e-5)
    # the same probabilities, not merely the same answers: the head and the softmax saw the same logits
    np.testing.assert_allclose(
        served, logits_to_proba(classifier.decision_function(photos, one_by_one), False), atol=1e-5
    )
    assert served.argmax(1).tolist() == plain.argmax(1).tolist()


def test_quantized_pixels_embed_exactly_like_the_float_images(photos: list[bytes], onnx_cache: Path) -> None:
    base = create_backbone("efficientnet-lite0-int8", cache_dir=onnx_cache, num_threads=1)
    assert isinstance(base, QuantizedBackbone)
    pixels = base.pixel_input()
    pool = base.decode_pool()
    for view, flip in (("full", True), ("tile-centre", False)):
        p = view_backbone("", view, base=base).spec.preprocessing
        images = preprocess_views_batch(photos, [(p, flip)], pool)[0]
        codes = preprocess_views_batch(photos, [(p, flip)], pool, tables=[pixels.table(p)])[0]
        assert codes.dtype == np.uint8 and codes.shape == (len(photos), 224, 224, 3)
        embedded, logits = pixels.forward(codes)
        expected, expected_logits = base.forward(images)
        np.testing.assert_array_equal(embedded, expected)
        np.testing.assert_array_equal(logits, expected_logits)
    assert pixels.table(p).shape == (256,)  # Lite's mean and std are the same for every channel
    assert base.pixel_input() is pixels  # built once; a view's is its backbone's
    assert view_backbone("", "tile-tl", base=base).pixel_input() is pixels  # type: ignore[attr-defined]


def test_pixel_codes_are_those_of_onnx_runtimes_quantize_linear(onnx_cache: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    base = create_backbone("efficientnet-lite0-int8", cache_dir=onnx_cache, num_threads=1)
    assert isinstance(base, QuantizedBackbone)
    pixels = base.pixel_input()
    scale, zero_point = np.float32(pixels.scale), np.uint8(pixels.zero_point)
    ties = (np.arange(-300, 300) + 0.5).astype(np.float32) * scale  # halfway between two codes
    spread = np.random.default_rng(0).uniform(-1.5, 1.5, 100_000).astype(np.float32)
    x = np.concatenate([normalised_levels(LITE).ravel(), ties, spread])
    node = helper.make_node("QuantizeLinear", ["x", "scale", "zero_point"], ["y"])
    graph = helper.make_graph(
        [node],
        "quantize",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [len(x)])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.UINT8, [len(x)])],
        [
            numpy_helper.from_array(np.array(scale), "scale"),
            numpy_helper.from_array(np.array(zero_point), "zero_point"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(
        quantize_levels(x, pixels.scale, pixels.zero_point), session.run(None, {"x": x})[0]
    )


def test_a_loaded_classifier_runs_with_the_threads_it_is_given(
    classifier: FittedClassifier, onnx_cache: Path, tmp_path: Path
) -> None:
    classifier.save(tmp_path)
    for threads in (1, 2):
        loaded = FittedClassifier.load(tmp_path, cache_dir=onnx_cache, num_threads=threads)
        backbone = loaded._view_backbone("efficientnet-lite0-int8", "full")
        assert backbone.session._session.get_session_options().intra_op_num_threads == threads
        assert backbone.decode_pool()._max_workers == min(threads, default_workers())
    trained_with = FittedClassifier.load(tmp_path, cache_dir=onnx_cache)
    assert trained_with.recipe.num_threads == classifier.recipe.num_threads
