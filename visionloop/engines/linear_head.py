"""A regularised logistic-regression head on frozen embeddings, its strength chosen by stratified
cross-validation on the training set only; the out-of-fold logits of the chosen model are kept for
calibration."""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.errors import InvalidInput, NotFitted

FloatArray = npt.NDArray[np.float64]
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
HYPERPARAMS = {"C": float, "folds": int}


def _normalise(x: FloatArray) -> FloatArray:
    out: FloatArray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


class LinearHead:
    """Estimator contract: __init__ stores, fit returns self, learned state ends in ``_``."""

    def __init__(
        self, C: float | None = None, folds: int = 5, multi_label: bool = False, seed: int = 0
    ) -> None:
        self.C = C
        self.folds = folds
        self.multi_label = multi_label
        self.seed = seed
        self.coef_: FloatArray | None = None
        self.intercept_: FloatArray | None = None
        self.C_: float | None = None
        self.cv_scores_: dict[float, float] = {}
        self.oof_logits_: FloatArray = np.zeros((0, 0))
        self.oof_labels_: list[list[int]] = []

    def get_params(self) -> dict[str, Any]:
        return {
            "kind": "linear",
            "C": self.C_ if self.C_ is not None else self.C,
            "folds": self.folds,
            "multi_label": self.multi_label,
            "cv_scores": {str(k): round(v, 4) for k, v in self.cv_scores_.items()},
        }

    def fit(
        self, x: FloatArray, y: Sequence[Sequence[int]], n_labels: int, deadline: float | None = None
    ) -> LinearHead:
        if self.C is not None and self.C <= 0:
            raise InvalidInput("C must be positive")
        if self.folds < 2:
            raise InvalidInput("folds must be at least 2")
        xn = _normalise(np.asarray(x, dtype=np.float64))
        target = _target(y, n_labels, self.multi_label)
        folds = _folds(target, self.folds, self.seed, self.multi_label)
        grid = (self.C,) if self.C is not None else C_GRID
        best: tuple[float, float, FloatArray] | None = None
        for c in grid:
            if deadline is not None and best is not None and time.monotonic() > deadline:
                break
            oof = np.zeros((len(xn), n_labels))
            for train_idx, val_idx in folds:
                w, b = _fit(xn[train_idx], target[train_idx], n_labels, c, self.multi_label)
                oof[val_idx] = xn[val_idx] @ w.T + b
            score = _score(oof, target, self.multi_label)
            self.cv_scores_[c] = score
            if best is None or score > best[0]:
                best = (score, c, oof)
        assert best is not None
        _, self.C_, self.oof_logits_ = best
        self.oof_labels_ = [list(row) for row in y]
        self.coef_, self.intercept_ = _fit(xn, target, n_labels, self.C_, self.multi_label)
        return self

    def logits(self, x: FloatArray) -> FloatArray:
        if self.coef_ is None or self.intercept_ is None:
            raise NotFitted("LinearHead.logits() called before fit()")
        result: FloatArray = _normalise(np.asarray(x, dtype=np.float64)) @ self.coef_.T + self.intercept_
        return result

    def to_bytes(self) -> bytes:
        if self.coef_ is None or self.intercept_ is None:
            raise NotFitted("LinearHead.to_bytes() called before fit()")
        buf = io.BytesIO()
        np.savez(buf, coef=self.coef_, intercept=self.intercept_, multi_label=np.array(self.multi_label))
        return buf.getvalue()


def load_head(data: bytes) -> LinearHead:
    with np.load(io.BytesIO(data)) as z:
        head = LinearHead(multi_label=bool(z["multi_label"]))
        head.coef_, head.intercept_ = z["coef"], z["intercept"]
    return head


def fit_head(
    x: FloatArray,
    y: Sequence[Sequence[int]],
    n_labels: int,
    *,
    multi_label: bool,
    mode: str,
    seed: int,
    max_seconds: float | None,
    hyperparams: dict[str, Any],
) -> LinearHead:
    unknown = sorted(set(hyperparams) - set(HYPERPARAMS))
    if unknown:
        raise InvalidInput(
            f"unknown hyper-parameters: {', '.join(unknown)}; known: {', '.join(sorted(HYPERPARAMS))}"
        )
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    head = LinearHead(
        C=hyperparams.get("C"), folds=int(hyperparams.get("folds", 5)), multi_label=multi_label, seed=seed
    )
    return head.fit(x, y, n_labels, deadline)


def _target(y: Sequence[Sequence[int]], n_labels: int, multi: bool) -> npt.NDArray[Any]:
    if not multi:
        return np.array([row[0] for row in y], dtype=np.int64)
    out = np.zeros((len(y), n_labels))
    for i, row in enumerate(y):
        out[i, list(row)] = 1
    return out


def _folds(
    target: npt.NDArray[Any], k: int, seed: int, multi: bool
) -> list[tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(target)
    if multi:
        splitter: Any = KFold(min(k, n), shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(n)))
    counts = np.bincount(target)
    smallest = int(counts[counts > 0].min())
    if smallest < 2:  # a label with one image cannot be stratified
        splitter = KFold(min(k, n), shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(n)))
    k = min(k, smallest)
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(n), target))


def _fit(
    x: FloatArray, t: npt.NDArray[Any], n_labels: int, c: float, multi: bool
) -> tuple[FloatArray, FloatArray]:
    from sklearn.linear_model import LogisticRegression

    # the feature scale: normalised embeddings need a large C; scale it so the grid is meaningful
    strength = c * 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on tiny folds
        if multi:
            w = np.zeros((n_labels, x.shape[1]))
            b = np.zeros(n_labels)
            for j in range(n_labels):
                col = t[:, j]
                if col.min() == col.max():  # a label present in every or no image of the fold
                    b[j] = 10.0 if col[0] else -10.0
                    continue
                m = LogisticRegression(C=strength, max_iter=500).fit(x, col)
                w[j], b[j] = m.coef_[0], m.intercept_[0]
            return w, b
        present = np.unique(t)
        m = LogisticRegression(C=strength, max_iter=500).fit(x, t)
        w = np.zeros((n_labels, x.shape[1]))
        b = np.full(n_labels, -30.0)  # a label absent from the fold is never predicted there
        if len(present) == 2:  # sklearn returns one row for two classes
            w[present[1]], b[present[1]] = m.coef_[0], m.intercept_[0]
            b[present[0]] = 0.0
        else:
            w[present], b[present] = m.coef_, m.intercept_
        return w, b


def _score(logits: FloatArray, target: npt.NDArray[Any], multi: bool) -> float:
    """Macro F1 of out-of-fold predictions (arg-max, or logit > 0 per label for multi-label)."""
    n_labels = logits.shape[1]
    if multi:
        pred = logits > 0
        truth = target.astype(bool)
    else:
        pred = np.eye(n_labels, dtype=bool)[logits.argmax(1)]
        truth = np.eye(n_labels, dtype=bool)[target]
    tp = (pred & truth).sum(0)
    denom = pred.sum(0) + truth.sum(0)
    present = truth.sum(0) > 0
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(f1[present].mean()) if present.any() else 0.0
