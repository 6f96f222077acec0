from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from visionloop.engines.registry import create_backbone
from visionloop.engines.tflite import TfliteBackbone, lite3_int8_spec
from visionloop.errors import Unavailable

NAME = "efficientnet-lite3-int8"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lite3() -> TfliteBackbone:
    created = create_backbone(NAME, num_threads=1)
    assert isinstance(created, TfliteBackbone)
    created.warm_up()
    return created


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_imagenet_head_recognises_lemons(lite3: TfliteBackbone, grocery_dir: Path) -> None:
    photos = sorted((grocery_dir / "Lemon").glob("*.jpg"))[:4]
    assert photos, "no lemon photos"
    for photo, top5 in zip(photos, lite3.classify([p.read_bytes() for p in photos]), strict=True):
        assert "lemon" in [name for name, _ in top5], (photo.name, top5)


def test_outputs_agree_with_the_unmodified_tflite_model(lite3: TfliteBackbone, grocery_dir: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    photos = [sorted((grocery_dir / label).glob("*.jpg"))[0] for label in ("Lemon", "Banana", "Kiwi")]
    batch = lite3.preprocess([p.read_bytes() for p in photos])
    embeddings, logits = lite3.forward(batch)
    assert logits is not None

    with pytest.warns(UserWarning, match="preserve_all_tensors"):
        original = Interpreter(model_path=str(lite3.model_path), experimental_preserve_all_tensors=True)
    original.allocate_tensors()
    (source,), (output,) = original.get_input_details(), original.get_output_details()
    tensors = {t["name"]: t for t in original.get_tensor_details()}
    pooled, dense = (
        tensors["efficientnet-lite3/model/head/Squeeze1"],
        tensors["efficientnet-lite3/model/head/dense/BiasAdd"],
    )
    for i, image in enumerate(batch):
        original.set_tensor(source["index"], image.transpose(1, 2, 0).astype(np.uint8)[None])
        original.invoke()
        for tensor, ours in ((pooled, embeddings[i]), (dense, logits[i])):
            scale, zero_point = tensor["quantization"]
            expected = (original.get_tensor(tensor["index"])[0].astype(np.float32) - zero_point) * scale
            np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
        scale, zero_point = output["quantization"]
        probs = (original.get_tensor(output["index"])[0].astype(np.float32) - zero_point) * scale
        assert int(np.argmax(logits[i])) == int(np.argmax(probs))
        # The model's own output is the softmax quantised to steps of 1/256.
        np.testing.assert_allclose(_softmax(logits[i : i + 1])[0], probs, rtol=0, atol=2 / 256)


def test_it_cannot_be_fine_tuned(lite3: TfliteBackbone) -> None:
    with pytest.raises(Unavailable, match="cannot be fine-tuned"):
        lite3.torch_module()
    with pytest.raises(Unavailable, match="LiteRT"):
        lite3.onnx_path()
    with pytest.raises(Unavailable, match="LiteRT"):
        _ = lite3.session


def test_spec_version_follows_the_file(lite3: TfliteBackbone, tmp_path: Path) -> None:
    spec = lite3.spec
    assert (spec.input_size, spec.preprocessing.resize_size) == (280, 320)
    assert spec.preprocessing.mean == (0.0,) * 3 and spec.preprocessing.std == (1.0,) * 3
    copy = tmp_path / "copy.tflite"
    shutil.copyfile(lite3.model_path, copy)
    assert lite3_int8_spec(copy).fingerprint == spec.fingerprint
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed = tmp_path / "changed.tflite"
    changed.write_bytes(bytes(data))
    assert lite3_int8_spec(changed).fingerprint != spec.fingerprint


def test_threads_share_the_interpreter_safely(lite3: TfliteBackbone, jpegs: list[bytes]) -> None:
    expected = lite3.embed(jpegs)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: lite3.embed(jpegs, batch_size=2), range(4)))
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_num_threads_is_honoured_and_does_not_change_the_output(jpegs: list[bytes]) -> None:
    one, two = create_backbone(NAME, num_threads=1), create_backbone(NAME, num_threads=2)
    assert (one.num_threads, two.num_threads) == (1, 2)
    np.testing.assert_array_equal(one.embed(jpegs[:2]), two.embed(jpegs[:2]))


def test_a_missing_runtime_names_the_package_to_install() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["ai_edge_litert"] = None  # what an environment without the package looks like
        from visionloop.errors import Unavailable
        from visionloop.engines.registry import create_backbone, list_backbones
        assert "efficientnet-lite3-int8" in list_backbones()
        try:
            create_backbone("efficientnet-lite3-int8")
        except Unavailable as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "ai-edge-litert" in result.stdout and "visionloop[analysis]" in result.stdout
