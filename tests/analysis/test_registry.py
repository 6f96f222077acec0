"""The analyser registry: kinds, one shared instance, clear errors."""

from __future__ import annotations

import pytest

from visionloop.analysis import registry
from visionloop.errors import NotFound, Unavailable


def test_kinds_and_shared_instances() -> None:
    assert registry.list_analysers() == ["faces", "labels", "moderation", "text"]
    labels = registry.create_analyser("labels")
    assert registry.create_analyser("labels") is labels
    assert labels.kind == "labels" and labels.version.startswith("visionloop-labels-")
    for kind in registry.list_analysers():
        cls = registry.analyser_class(kind)
        assert cls.kind == kind


def test_unknown_kind_and_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotFound, match="known analysers: faces, labels, moderation, text"):
        registry.create_analyser("palms")
    monkeypatch.setitem(registry.ANALYSERS, "ghost", ("visionloop.analysis.no_such_module", "Ghost"))
    with pytest.raises(Unavailable, match="pip install"):
        registry.create_analyser("ghost")
