"""The classification engine's recipe: the mode's defaults, the chosen backbone, an expert's
hyper-parameters (checked before any image is embedded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from visionloop.core.entities import TaskType
from visionloop.core.ports import TrainingSpec
from visionloop.engines.classification import ClassificationEngine
from visionloop.engines.recipe import MIRRORED_TILE_VIEWS, TILE_VIEWS
from visionloop.errors import InvalidInput


def spec(mode: str = "fast", backbone: str = "auto", **hyperparams: Any) -> TrainingSpec:
    return TrainingSpec(
        project="p",
        version="v1",
        version_arn="arn",
        task=TaskType.CLASSIFICATION,
        labels=("a", "b"),
        train=(),
        test=(),
        backbone=backbone,
        mode=mode,
        seed=3,
        max_seconds=None,
        hyperparams=hyperparams,
    )


def test_modes_and_backbone(tmp_path: Path) -> None:
    engine = ClassificationEngine(tmp_path, num_threads=1)
    fast = engine.recipe_for(spec())
    assert fast.backbones == ("efficientnet-lite0-int8",) and fast.finetune is False and fast.seed == 3
    assert fast.views == fast.predict_views == TILE_VIEWS and fast.search_backbones is False
    best = engine.recipe_for(spec("best"))
    assert best.backbones == ("efficientnet-lite0", "efficientnet-lite2") and best.search_backbones is True
    assert best.finetune is False and best.max_seconds == 600.0 and best.predict_views == TILE_VIEWS
    assert best.views == MIRRORED_TILE_VIEWS
    chosen = engine.recipe_for(spec(backbone="efficientnet-lite2"))
    assert chosen.backbones == ("efficientnet-lite2",) and chosen.search_backbones is False
    tuned = engine.recipe_for(spec("best", finetune=True))
    assert tuned.backbones == ("efficientnet-lite0",) and tuned.finetune is True
    tuned_fast = engine.recipe_for(spec(finetune=True))  # fine-tuned in fp32, not on the INT8 graph
    assert tuned_fast.backbones == ("efficientnet-lite0",) and tuned_fast.finetune is True


def test_an_expert_may_set_the_fine_tuning(tmp_path: Path) -> None:
    engine = ClassificationEngine(tmp_path, num_threads=1)
    r = engine.recipe_for(
        spec("best", finetune_blocks=2, epochs=3, lr=1e-3, predict_views=["full"], force_finetune=True)
    )
    assert (r.finetune_blocks, r.epochs, r.lr, r.predict_views, r.force_finetune) == (
        2,
        3,
        1e-3,
        ("full",),
        True,
    )
    assert engine.recipe_for(spec("best", finetune=False)).finetune is False


@pytest.mark.parametrize(
    ("hyperparams", "message"),
    [
        ({"bogus": 1}, "unknown hyper-parameters: bogus"),
        ({"epochs": 0}, "epochs must be an integer"),
        ({"lr": -1}, "lr must be a positive number"),
        ({"finetune": "yes"}, "finetune must be true or false"),
        ({"predict_views": ["sideways"]}, "unknown predict_views"),
    ],
)
def test_bad_hyperparameters_are_refused(tmp_path: Path, hyperparams: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ClassificationEngine(tmp_path, num_threads=1).recipe_for(spec("best", **hyperparams))
