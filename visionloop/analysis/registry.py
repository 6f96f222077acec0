"""The pretrained analysers by kind, created by name like the backbones (engines.registry):

    create_analyser("labels")       # the process's LabelsAnalyser, created on first call
    create_analyser("faces", face_landmarks="5")    # faces on dlib's public-domain 5-point model
    list_analysers()                # ["faces", "labels", "moderation", "text"]

Each kind's module is imported only when that kind is first asked for, and one instance per kind (and
thread count and options) is shared by the whole process: the analysers are thread-safe and load their
models once."""

from __future__ import annotations

import importlib
import threading
from typing import Any

from visionloop.errors import NotFound, Unavailable

# kind → (module, class); each class takes (num_threads: int | None = None), faces also landmarks="68"|"5"
ANALYSERS: dict[str, tuple[str, str]] = {
    "faces": ("visionloop.analysis.faces", "FaceAnalyser"),
    "labels": ("visionloop.analysis.labels", "LabelsAnalyser"),
    "moderation": ("visionloop.analysis.moderation", "ModerationAnalyser"),
    "text": ("visionloop.analysis.text", "TextAnalyser"),
}
_INSTANCES: dict[tuple[str, int | None, tuple[tuple[str, Any], ...]], Any] = {}
_LOCK = threading.Lock()


def list_analysers() -> list[str]:
    """The kinds of analyser, sorted."""
    return sorted(ANALYSERS)


def analyser_class(kind: str) -> type[Any]:
    """The class of an analyser kind; NotFound for an unknown kind, Unavailable when its module or the
    packages it needs are not installed."""
    try:
        module_name, class_name = ANALYSERS[kind]
    except KeyError:
        raise NotFound(
            f"unknown analyser {kind!r}; known analysers: {', '.join(list_analysers())}", name=kind
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise Unavailable(
            f"the {kind} analyser is not available ({e}): pip install 'visionloop[ml,analysis]'"
        ) from e
    cls: type[Any] = getattr(module, class_name)
    return cls


def create_analyser(kind: str, num_threads: int | None = None, face_landmarks: str = "68") -> Any:
    """The process's analyser of ``kind`` (created on first call; its models load on first use).
    ``face_landmarks`` (the setting of that name) is the faces' landmark model; other kinds ignore it."""
    options = {"landmarks": face_landmarks} if kind == "faces" else {}
    key = (kind, num_threads, tuple(sorted(options.items())))
    with _LOCK:
        analyser = _INSTANCES.get(key)
        if analyser is None:
            analyser = analyser_class(kind)(num_threads=num_threads, **options)
            _INSTANCES[key] = analyser
        return analyser
