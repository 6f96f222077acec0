"""ONNX export cache and ONNX Runtime sessions.

A model is exported from torch once, written atomically to the cache with a ``.sha256`` sidecar,
and checked against it on every load: a corrupted or partial file is exported again. torch is
imported only by :func:`export_onnx`, so a process that only serves never loads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionloop.errors import Unavailable

if TYPE_CHECKING:
    import torch

CACHE_ENV = "VISIONLOOP_CACHE_DIR"
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$VISIONLOOP_CACHE_DIR/onnx`` if set, else ``~/.cache/visionloop/onnx``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "visionloop"
    return base / "onnx"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def file_checksum(path: Path) -> str:
    """SHA-256 of a file, memoised per (path, size, mtime) for weights read many times."""
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def safe_key(key: str) -> str:
    """A cache key made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "model"


def is_valid(path: Path) -> bool:
    """True when ``path`` exists and matches its ``.sha256`` sidecar."""
    sidecar = path.with_name(path.name + ".sha256")
    try:
        expected = sidecar.read_text().strip()
        return bool(expected) and sha256_file(path) == expected
    except FileNotFoundError:
        return False


def cached_onnx(cache_dir: Path, key: str, export: Callable[[], bytes]) -> Path:
    """Path of the cached ONNX model for ``key``, calling ``export`` when missing or corrupted."""
    path = Path(cache_dir) / f"{safe_key(key)}.onnx"
    if is_valid(path):
        return path
    data = export()
    atomic_write(path, data)
    atomic_write(path.with_name(path.name + ".sha256"), hashlib.sha256(data).hexdigest().encode())
    return path


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    # The torch exporter logs and warns about internals (missing torchvision ops, deprecations)
    # that say nothing about our model; keep them out of users' logs.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(module: torch.nn.Module, input_size: int, output_names: Sequence[str]) -> bytes:
    """Export ``module(images)`` (NCHW float32, dynamic batch) to serialized ONNX."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is in the ml extra
        raise Unavailable("exporting a backbone needs torch: pip install 'visionloop[ml]'") from exc
    example = torch.zeros(2, 3, input_size, input_size)
    with _quiet_export(), torch.no_grad():
        program = torch.onnx.export(
            module.eval(),
            (example,),
            dynamo=True,
            input_names=["images"],
            output_names=list(output_names),
            dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
            verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise RuntimeError("torch.onnx.export returned no program")
    return bytes(program.model_proto.SerializeToString())


#: INT8 graphs on x86 CPUs without VNNI (AVX2 only): ONNX Runtime's fast u8s8 kernels (VPMADDUBSW) saturate
#: their 16-bit sums, so the same graph gave other embeddings than on a VNNI CPU; this mode uses exact
#: kernels. Measured on an AVX2-only AMD EPYC (80 photos): cosine of the INT8 Lite0 embeddings to fp32's
#: 0.872 mean (0.616 worst) → 0.980 (0.917), 14.7 → 17.4 ms an image. No effect on fp32 graphs or VNNI CPUs.
EXACT_INT8 = ("session.x64quantprecision", "1")


class OnnxSession:
    """An ONNX Runtime CPU session with its intra-op threads set.

    ``spinning=False`` stops idle worker threads from busy-waiting, which leaves the cores to the
    image-decoding threads that run beside inference.
    """

    def __init__(self, path: Path, num_threads: int | None = None, *, spinning: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.add_session_config_entry(*EXACT_INT8)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: Any = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name: str = self._session.get_inputs()[0].name
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]

    def output_dim(self, name: str) -> int | None:
        """Static size of an output's last axis, if known."""
        for output in self._session.get_outputs():
            if output.name == name:
                last = output.shape[-1]
                return last if isinstance(last, int) else None
        return None

    def metadata(self) -> dict[str, str]:
        """The model's metadata properties (``metadata_props``)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run on a batch (NCHW float32 images, or what the graph's input takes); outputs by name."""
        outputs = self._session.run(None, {self.input_name: batch})
        return {name: np.asarray(out) for name, out in zip(self.output_names, outputs, strict=True)}
