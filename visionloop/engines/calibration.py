"""Confidence calibration and calibration error, on numpy and scipy.

Fit a :class:`Calibrator` on *held-out* logits: the out-of-fold predictions of the cross-validation run
on the training set. Never fit it on the test set, whose job is to measure the calibrated model.

* Every calibrator then mixes in a little of the uniform distribution, as much as minimises the
  held-out NLL but at least ``1 / (n + 2)`` for ``n`` held-out images (:func:`fit_floor`): no
  confidence reaches 100 % (or 0 %) unless that many images support it.
* Single-label (``kind="softmax"``): temperature scaling, ``softmax(z / T)``. T minimises the mean
  negative log-likelihood; the search is scipy's bounded Brent search on log T within bounds (the NLL
  is convex in 1/T, hence unimodal in log T; deterministic). It never changes the arg-max label.
* Multi-label (``kind="sigmoid"``): by default one temperature shared by all labels, ``sigmoid(z / T)``
  fitted on the binary cross-entropy of every (image, label) pair: one parameter stays stable with the
  few positives a label has. ``method="platt"`` fits ``sigmoid(a_j z + b_j)`` per label instead (Platt
  scaling with Platt's smoothed targets, scipy's BFGS), for heads whose labels are miscalibrated in
  different ways.

Calibration error: :func:`expected_calibration_error` bins predictions by confidence into ``n_bins``
equal-width bins ``(k/n, (k+1)/n]`` and averages ``|accuracy - mean confidence|`` weighted by bin size.
For single-label pass the top-label confidence and whether the top label is right
(:func:`top_label_confidence`); for multi-label pass every (image, label) probability with whether that
label is present.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
from scipy.special import expit, log_softmax
from scipy.special import softmax as _softmax

from visionloop.core.records.evaluation import ReliabilityBin
from visionloop.errors import InvalidInput, NotFitted

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Kind = Literal["softmax", "sigmoid"]
Method = Literal["temperature", "platt"]

DEFAULT_BOUNDS = (0.05, 20.0)
_XATOL = 1e-6  # where the one-parameter searches stop: far below what changes a probability visibly


def softmax(logits: npt.ArrayLike) -> FloatArray:
    """Row-wise softmax, stable for large logits."""
    out: FloatArray = _softmax(np.asarray(logits, dtype=np.float64), axis=-1)
    return out


def sigmoid(logits: npt.ArrayLike) -> FloatArray:
    """Element-wise logistic function, stable for large logits."""
    out: FloatArray = expit(np.asarray(logits, dtype=np.float64))
    return out


def softmax_nll(logits: FloatArray, y: npt.NDArray[np.int64], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under ``softmax(logits / T)``."""
    log_p = log_softmax(logits / temperature, axis=1)
    return float(-np.mean(log_p[np.arange(log_p.shape[0]), y]))


def sigmoid_nll(logits: FloatArray, y: FloatArray, temperature: float = 1.0) -> float:
    """Mean binary cross-entropy of 0/1 targets under ``sigmoid(logits / T)``."""
    # one line on the logits; sklearn's log_loss works on clipped probabilities instead
    u = logits / temperature
    return float(np.mean(np.logaddexp(0.0, u) - y * u))


def minimize_bounded(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Minimiser of a unimodal function on [lo, hi]: scipy's bounded Brent search (deterministic)."""
    # scipy.optimize takes half a second to import: imported where fitting needs it, not on model load
    from scipy.optimize import minimize_scalar

    return float(minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": _XATOL}).x)


def fit_temperature(
    logits: npt.ArrayLike,
    y: npt.ArrayLike,
    kind: Kind = "softmax",
    bounds: tuple[float, float] = DEFAULT_BOUNDS,
) -> float:
    """Temperature minimising the held-out NLL; y = class indices (softmax) or a 0/1 matrix (sigmoid)."""
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    targets = labels.astype(np.float64)

    def objective(log_t: float) -> float:
        t = float(np.exp(log_t))
        return softmax_nll(z, labels, t) if kind == "softmax" else sigmoid_nll(z, targets, t)

    log_t = minimize_bounded(objective, float(np.log(bounds[0])), float(np.log(bounds[1])))
    return float(np.exp(log_t))


def mix_uniform(probs: FloatArray, floor: float, kind: Kind) -> FloatArray:
    """``(1 - floor) · p + floor · u``: u is the uniform distribution over the labels (softmax) or one
    half (sigmoid). A floor above 0 keeps every confidence strictly between 0 and 1."""
    if floor <= 0.0:
        return probs
    uniform = 1.0 / probs.shape[1] if kind == "softmax" else 0.5
    out: FloatArray = (1.0 - floor) * probs + floor * uniform
    return out


def fit_floor(probs: FloatArray, y: npt.ArrayLike, kind: Kind, high: float = 0.5) -> float:
    """The share of uniform probability mixed into calibrated ``probs`` that minimises the held-out NLL,
    at least ``1 / (n + 2)`` for ``n`` held-out images (Laplace's rule of succession: after n right
    answers out of n, the next one is right with probability (n + 1) / (n + 2), not 1). Temperature
    alone reaches 100 % whenever the held-out images happen to be perfectly separated."""
    p = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    low = 1.0 / (len(p) + 2)

    def objective(floor: float) -> float:
        q = np.clip(mix_uniform(p, floor, kind), 1e-300, 1.0)
        if kind == "softmax":
            return float(-np.mean(np.log(q[np.arange(len(q)), labels])))
        return float(-np.mean(labels * np.log(q) + (1 - labels) * np.log(np.clip(1 - q, 1e-300, 1.0))))

    return max(low, minimize_bounded(objective, low, high))


def fit_platt(scores: npt.ArrayLike, y: npt.ArrayLike) -> tuple[float, float]:
    """Slope and intercept of ``sigmoid(a * score + b)`` (Platt 1999; Lin, Lin & Weng 2007).

    Uses Platt's smoothed targets, so separable data gives finite parameters, and scipy's BFGS on the
    (convex) cross-entropy with its gradient. Starts from the identity (a=1, b=0).
    """
    from scipy.optimize import minimize

    z = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(y, dtype=bool).ravel()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    t = np.where(pos, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss_and_gradient(p: FloatArray) -> tuple[float, FloatArray]:
        u = p[0] * z + p[1]
        residual = expit(u) - t
        return float(np.sum(np.logaddexp(0.0, u) - t * u)), np.array([residual @ z, residual.sum()])

    options = {"gtol": 1e-8 * max(1, z.size)}
    result = minimize(loss_and_gradient, np.array([1.0, 0.0]), jac=True, method="BFGS", options=options)
    return float(result.x[0]), float(result.x[1])


# ---------------------------------------------------------------------------------------------------
# calibration error


def top_label_confidence(probs: npt.ArrayLike, y_true: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    """Single-label: each image's highest probability and whether that label is the true one."""
    p = np.asarray(probs, dtype=np.float64)
    top = np.argmax(p, axis=1)
    correct: BoolArray = top == np.asarray(y_true, dtype=np.int64)
    confidence: FloatArray = p[np.arange(p.shape[0]), top]
    return confidence, correct


def reliability_table(
    probs: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 15
) -> tuple[ReliabilityBin, ...]:
    """Equal-width confidence bins (k/n, (k+1)/n] with count, mean confidence and accuracy (all bins)."""
    # not sklearn's calibration_curve: it returns neither the counts nor the empty bins the table shows
    conf, hit = _check_confidences(probs, correct, n_bins)
    index = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(index, weights=hit.astype(np.float64), minlength=n_bins)
    return tuple(
        ReliabilityBin(
            lower=k / n_bins,
            upper=(k + 1) / n_bins,
            count=int(counts[k]),
            mean_confidence=float(conf_sum[k] / counts[k]) if counts[k] else None,
            accuracy=float(hit_sum[k] / counts[k]) if counts[k] else None,
        )
        for k in range(n_bins)
    )


def expected_calibration_error(probs: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 15) -> float:
    """Σ_bins (count / n) · |accuracy − mean confidence| over equal-width confidence bins."""
    table = reliability_table(probs, correct, n_bins)
    total = sum(b.count for b in table)
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.mean_confidence)
            for b in table
            if b.accuracy is not None and b.mean_confidence is not None
        )
    )


def _check_confidences(
    probs: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int
) -> tuple[FloatArray, BoolArray]:
    conf = np.asarray(probs, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    if conf.size == 0 or conf.size != hit.size:
        raise InvalidInput("need as many correctness flags as confidences, and at least one")
    if not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0 or n_bins < 1:
        raise InvalidInput("confidences must be within 0..1 and n_bins ≥ 1")
    return conf, hit


# ---------------------------------------------------------------------------------------------------
# the calibrator


class Calibrator:
    """Maps a head's logits to calibrated probabilities (estimator contract: fit stores state in ``*_``)."""

    def __init__(
        self,
        kind: Kind = "softmax",
        method: Method = "temperature",
        bounds: tuple[float, float] = DEFAULT_BOUNDS,
    ) -> None:
        self.kind = kind
        self.method = method
        self.bounds = bounds
        self.temperature_: float | None = None
        self.slopes_: FloatArray | None = None
        self.intercepts_: FloatArray | None = None
        self.floor_: float = 0.0

    def fit(self, logits: npt.ArrayLike, y: npt.ArrayLike) -> Self:
        """Fit on held-out logits [n, n_labels]; y = class indices (softmax) or a 0/1 matrix (sigmoid)."""
        z, target = self._validate(logits, y)
        if self.method == "platt":
            pairs = [fit_platt(z[:, j], target[:, j]) for j in range(z.shape[1])]
            self.slopes_ = np.array([a for a, _ in pairs])
            self.intercepts_ = np.array([b for _, b in pairs])
        else:
            self.temperature_ = fit_temperature(z, target, self.kind, self.bounds)
        self.floor_ = 0.0
        self.floor_ = fit_floor(self.transform(z), target, self.kind)
        return self

    def transform(self, logits: npt.ArrayLike) -> FloatArray:
        """Calibrated probabilities for logits [n, n_labels]."""
        z = np.asarray(logits, dtype=np.float64)
        if self.slopes_ is not None and self.intercepts_ is not None:
            p = sigmoid(z * self.slopes_ + self.intercepts_)
        elif self.temperature_ is None:
            raise NotFitted("Calibrator.transform() called before fit()")
        else:
            scaled = z / self.temperature_
            p = softmax(scaled) if self.kind == "softmax" else sigmoid(scaled)
        return mix_uniform(p, self.floor_, self.kind)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters and fitted state."""
        return {
            "kind": self.kind,
            "method": self.method,
            "bounds": list(self.bounds),
            "temperature": self.temperature_,
            "slopes": None if self.slopes_ is None else self.slopes_.tolist(),
            "intercepts": None if self.intercepts_ is None else self.intercepts_.tolist(),
            "floor": self.floor_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Rebuild a calibrator saved with :meth:`to_dict`."""
        calibrator = cls(data["kind"], data["method"], (float(data["bounds"][0]), float(data["bounds"][1])))
        calibrator.temperature_ = None if data["temperature"] is None else float(data["temperature"])
        if data["slopes"] is not None:
            calibrator.slopes_ = np.array(data["slopes"], dtype=np.float64)
            calibrator.intercepts_ = np.array(data["intercepts"], dtype=np.float64)
        calibrator.floor_ = float(data.get("floor", 0.0))  # calibrators saved before floors: none
        return calibrator

    def _validate(self, logits: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        if self.kind not in ("softmax", "sigmoid") or self.method not in ("temperature", "platt"):
            raise InvalidInput(f"unknown calibration kind/method {self.kind!r}/{self.method!r}")
        if self.method == "platt" and self.kind != "sigmoid":
            raise InvalidInput("Platt scaling is per label: use it with kind='sigmoid'")
        if not 0.0 < self.bounds[0] < self.bounds[1]:
            raise InvalidInput("temperature bounds must satisfy 0 < low < high")
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] == 0 or not np.all(np.isfinite(z)):
            raise InvalidInput("logits must be a finite, non-empty [n, n_labels] matrix")
        target = np.asarray(y, dtype=np.int64)
        shape, limit = (z.shape[:1], z.shape[1]) if self.kind == "softmax" else (z.shape, 2)
        if target.shape != shape or target.min() < 0 or target.max() >= limit:
            raise InvalidInput(
                "y must be class indices (softmax) or a 0/1 matrix shaped like logits (sigmoid)"
            )
        return z, target
