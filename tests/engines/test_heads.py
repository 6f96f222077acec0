"""The classifier heads follow the estimator contract and learn on small synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.engines.heads import LinearHead
from visionloop.errors import InvalidInput, NotFitted


def blobs(n_per: int = 30, n_labels: int = 3, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters, one per label, with a large feature offset (standardisation matters)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (n_labels, dim))
    x = np.concatenate([rng.normal(c, 1.0, (n_per, dim)) for c in centres]) + 100.0
    y = np.repeat(np.arange(n_labels), n_per)
    return x, y


def test_init_only_stores() -> None:
    head = LinearHead(-1.0, max_iter=0)  # nonsense is accepted here and refused by fit
    assert head.get_params()["l2"] == -1.0
    assert not hasattr(head, "coef_")


def test_single_label_learns_and_is_deterministic() -> None:
    x, y = blobs()
    a = LinearHead(1e-3, n_labels=3).fit(x, y)
    b = LinearHead(1e-3, n_labels=3).fit(x, y)
    logits = a.decision_function(x)
    assert logits.shape == (90, 3)
    assert (logits.argmax(1) == y).mean() > 0.95
    np.testing.assert_array_equal(logits, b.decision_function(x))


def test_a_label_absent_from_training_gets_low_logits() -> None:
    x, y = blobs(n_labels=3)
    keep = y < 2
    head = LinearHead(1e-2, n_labels=4).fit(x[keep], y[keep])
    logits = head.decision_function(x[keep])
    assert logits.shape == (int(keep.sum()), 4)
    assert (logits.argmax(1) < 2).all()


def test_stronger_penalty_shrinks_weights() -> None:
    x, y = blobs()
    weak = LinearHead(1e-4, n_labels=3).fit(x, y)
    strong = LinearHead(1.0, n_labels=3).fit(x, y)
    assert np.abs(strong.coef_).sum() < np.abs(weak.coef_).sum()


def test_multi_label_uses_one_sigmoid_per_label() -> None:
    x, y = blobs(n_labels=3)
    targets = np.stack([y == 0, y != 0, y == 2], axis=1).astype(int)  # label 1 and 2 co-occur
    head = LinearHead(1e-3, n_labels=3, multi_label=True).fit(x, targets)
    pred = head.decision_function(x) > 0
    assert (pred == targets.astype(bool)).mean() > 0.95


def test_sample_weight_changes_the_fit() -> None:
    x, y = blobs()
    w = np.where(y == 0, 10.0, 1.0)
    plain = LinearHead(1e-2, n_labels=3).fit(x, y)
    weighted = LinearHead(1e-2, n_labels=3).fit(x, y, sample_weight=w)
    assert not np.allclose(plain.coef_, weighted.coef_)


def test_state_round_trip() -> None:
    x, y = blobs()
    head = LinearHead(1e-3, n_labels=3).fit(x, y)
    again = LinearHead.from_state(head.get_params(), head.state())
    np.testing.assert_array_equal(head.decision_function(x), again.decision_function(x))


def test_not_fitted() -> None:
    with pytest.raises(NotFitted):
        LinearHead().decision_function(np.zeros((1, 4)))
    with pytest.raises(NotFitted):
        LinearHead().state()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"l2": -1.0}, "l2"),
        ({"l2": float("nan")}, "l2"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_bad_hyperparameters_are_refused_in_fit(kwargs: dict[str, float], message: str) -> None:
    x, y = blobs()
    with pytest.raises(InvalidInput, match=message):
        LinearHead(**kwargs).fit(x, y)  # type: ignore[arg-type]


def test_bad_data_is_refused() -> None:
    x, y = blobs()
    with pytest.raises(InvalidInput, match="integers"):
        LinearHead(n_labels=2).fit(x, y)  # label 2 out of range
    with pytest.raises(InvalidInput, match="NaN"):
        LinearHead(n_labels=3).fit(np.full_like(x, np.nan), y)
    with pytest.raises(InvalidInput, match="shape"):
        LinearHead(n_labels=3, multi_label=True).fit(x, y)
    with pytest.raises(InvalidInput, match="sample_weight"):
        LinearHead(n_labels=3).fit(x, y, sample_weight=-np.ones(len(y)))
