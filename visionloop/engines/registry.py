"""Pretrained backbones registered by decorator and created by name (the timm pattern).

@register_backbone
def efficientnet_lite0(**kwargs: Any) -> Backbone: ...

create_backbone("efficientnet-lite0")        # a bundled, offline backbone
create_backbone("hf:facebook/dinov2-small")  # a Hugging Face encoder by id or local path
list_backbones("efficientnet-*")
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from visionloop.engines.preprocess import Preprocessing
from visionloop.errors import NotFound

if TYPE_CHECKING:
    from visionloop.engines.backbones import Backbone

DEFAULT_BACKBONE = "efficientnet-lite0"
HF_PREFIX = "hf:"
_BUILTIN_MODULES = (
    "visionloop.engines.backbones",
    "visionloop.engines.quantized",
    "visionloop.engines.tflite",
)

Factory = TypeVar("Factory", bound=Callable[..., "Backbone"])
_FACTORIES: dict[str, Callable[..., Backbone]] = {}


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone declares: its pixels, its outputs and the exact weights behind them."""

    name: str
    preprocessing: Preprocessing
    embedding_dim: int
    num_classes: int  # 0 when the backbone has no classification head
    version: str  # weights checksum + export code version

    @property
    def input_size(self) -> int:
        """Square input side in pixels."""
        return self.preprocessing.input_size

    @property
    def fingerprint(self) -> str:
        """Short hash of everything that changes the embeddings (keys cached vectors)."""
        text = f"{self.name}|{self.version}|{self.preprocessing.id}"
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def register_backbone(factory: Factory) -> Factory:
    """Register ``factory`` under its function name with ``_`` written as ``-``."""
    name = factory.__name__.replace("_", "-")
    if name in _FACTORIES and _FACTORIES[name] is not factory:
        warnings.warn(f"backbone {name!r} registered again; the new one replaces it", stacklevel=2)
    _FACTORIES[name] = factory
    return factory


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_backbones(pattern: str | None = None) -> list[str]:
    """Sorted names of registered backbones, filtered by a shell-style ``pattern``."""
    _load_builtins()
    names = sorted(_FACTORIES)
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def is_backbone(name: str) -> bool:
    """True if ``create_backbone(name)`` can resolve ``name`` (``hf:`` names always can)."""
    _load_builtins()
    return name in _FACTORIES or (name.startswith(HF_PREFIX) and len(name) > len(HF_PREFIX))


def create_backbone(name: str, **kwargs: Any) -> Backbone:
    """Create a backbone by registered name or ``hf:<model id or path>``.

    Keyword arguments go to the factory: ``cache_dir`` (ONNX cache) and ``num_threads``.
    """
    _load_builtins()
    if name.startswith(HF_PREFIX) and len(name) > len(HF_PREFIX):
        from visionloop.engines.hf import create_hf_backbone

        return create_hf_backbone(name[len(HF_PREFIX) :], **kwargs)
    try:
        factory = _FACTORIES[name]
    except KeyError:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise NotFound(
            f"unknown backbone {name!r}; known backbones: {known} "
            f"(or {HF_PREFIX}<model id or path> for a Hugging Face encoder)",
            name=name,
        ) from None
    return factory(**kwargs)
