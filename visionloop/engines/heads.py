"""Classifier heads on frozen embeddings, following the estimator contract (STYLE §3, habit 7).

``__init__`` only stores hyper-parameters, ``fit`` validates them and returns ``self``, learned state
ends in ``_``, and using a head before ``fit`` raises :class:`~visionloop.errors.NotFitted`.

Both heads take float features ``x`` of shape ``(n, d)`` and targets ``y`` that are either label
indices ``(n,)`` (single-label, softmax) or a 0/1 matrix ``(n, n_labels)`` (multi-label, one sigmoid
per label). They return logits; the caller turns them into probabilities (after calibration).

- :class:`LinearHead`: logistic regression (multinomial or one-vs-rest) with an L2 penalty, solved
  full-batch with L-BFGS (in float32) on standardised features. Deterministic: no randomness at all.

An MLP head (one hidden layer, dropout, feature mixup or noise) was tried and did not beat it on the
grocery benchmark (``bench/research/exp09_mlp.py``), so it is not kept.

torch is imported inside the methods that need it, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from visionloop.errors import InvalidInput, NotFitted

if TYPE_CHECKING:
    import torch

FloatArray = npt.NDArray[np.float64]
Array = npt.NDArray[Any]


def _check_xy(x: Array, y: Array, n_labels: int, multi_label: bool) -> tuple[FloatArray, Array]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) == 0:
        raise InvalidInput(f"features must be a non-empty 2-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidInput("features contain NaN or infinite values")
    if n_labels < 1:
        raise InvalidInput("n_labels must be at least 1")
    if multi_label:
        if y.shape != (len(x), n_labels):
            raise InvalidInput(f"multi-label targets must have shape {(len(x), n_labels)}, got {y.shape}")
        if not np.isin(y, (0, 1)).all():
            raise InvalidInput("multi-label targets must be 0 or 1")
        return x, y.astype(np.float64)
    if y.shape != (len(x),):
        raise InvalidInput(f"single-label targets must have shape {(len(x),)}, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_labels:
        raise InvalidInput(f"single-label targets must be integers in [0, {n_labels})")
    return x, y.astype(np.int64)


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not (isinstance(value, int | float) and np.isfinite(value) and ok):
        raise InvalidInput(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")


class LinearHead:
    """L2-regularised logistic regression on standardised features.

    Minimises ``mean log-loss + l2 / 2 · ||W||²`` (the bias is not penalised) with full-batch
    L-BFGS; ``l2`` plays the role of ``1 / (C · n)`` in scikit-learn's parametrisation.

    ``num_threads`` defaults to 1: the problem is small (a 600 × 1280 matrix), and with two OpenMP
    threads on a busy 2-core machine each of L-BFGS's many tiny vector operations can stall on a
    descheduled thread (measured: 0.3 s per fit alone, 8–23 s beside another busy process).
    """

    # learned state, set by fit (declared here for type checkers; absent before fit)
    coef_: FloatArray
    intercept_: FloatArray
    mean_: FloatArray
    scale_: FloatArray
    n_labels_: int

    def __init__(
        self,
        l2: float = 1e-3,
        *,
        n_labels: int | None = None,
        multi_label: bool = False,
        standardize: bool = True,
        max_iter: int = 300,
        num_threads: int = 1,
    ) -> None:
        self.l2 = l2
        self.n_labels = n_labels
        self.multi_label = multi_label
        self.standardize = standardize
        self.max_iter = max_iter
        self.num_threads = num_threads

    def get_params(self) -> dict[str, Any]:
        return {
            "kind": "linear",
            "l2": self.l2,
            "n_labels": self.n_labels,
            "multi_label": self.multi_label,
            "standardize": self.standardize,
            "max_iter": self.max_iter,
        }

    def fit(
        self, x: Array, y: Array, sample_weight: Array | None = None, init: LinearHead | None = None
    ) -> LinearHead:
        """Fit on features ``x`` and targets ``y``; ``init`` (a fitted head of the same shape) is a
        warm start, which makes a path of decreasing penalties on the same data cheaper."""
        import torch

        _positive("l2", self.l2, allow_zero=True)
        if not isinstance(self.max_iter, int) or isinstance(self.max_iter, bool) or self.max_iter < 1:
            raise InvalidInput(f"max_iter must be a positive integer, got {self.max_iter!r}")
        n_labels = self.n_labels if self.n_labels is not None else int(np.max(y)) + 1
        x, y = _check_xy(x, y, n_labels, self.multi_label)
        if self.standardize:
            self.mean_, self.scale_ = x.mean(0), np.maximum(x.std(0), 1e-6)
        else:
            self.mean_, self.scale_ = np.zeros(x.shape[1]), np.ones(x.shape[1])
        xs = (x - self.mean_) / self.scale_
        w = _sample_weights(sample_weight, len(x))
        with torch_threads(self.num_threads):
            # float32: two to four times faster than float64 on these fits, weights within 0.1 %
            xt = torch.from_numpy(xs.astype(np.float32))
            yt = torch.from_numpy(y.astype(np.float32) if self.multi_label else y)
            wt = torch.from_numpy(w.astype(np.float32))
            w0, b0 = np.zeros((n_labels, x.shape[1])), np.zeros(n_labels)
            if init is not None and getattr(init, "coef_", np.zeros(0)).shape == w0.shape:
                w0, b0 = init.coef_ * self.scale_, init.intercept_ + init.coef_ @ self.mean_
            weight = torch.tensor(w0, dtype=torch.float32, requires_grad=True)
            bias = torch.tensor(b0, dtype=torch.float32, requires_grad=True)
            opt = torch.optim.LBFGS(
                [weight, bias],
                lr=1.0,
                max_iter=self.max_iter,
                tolerance_grad=1e-5,
                tolerance_change=1e-9,
                history_size=20,
                line_search_fn="strong_wolfe",
            )
            reduction_multi = self.multi_label

            def closure() -> torch.Tensor:
                opt.zero_grad()
                logits = xt @ weight.T + bias
                if reduction_multi:
                    per = torch.nn.functional.binary_cross_entropy_with_logits(
                        logits, yt, reduction="none"
                    ).mean(1)
                else:
                    per = torch.nn.functional.cross_entropy(logits, yt, reduction="none")
                loss = (per * wt).sum() + 0.5 * self.l2 * (weight * weight).sum()
                loss.backward()  # type: ignore[no-untyped-call]
                return loss

            opt.step(closure)  # type: ignore[no-untyped-call]
            self.coef_ = weight.detach().numpy().astype(np.float64) / self.scale_
            self.intercept_ = bias.detach().numpy().astype(np.float64) - self.coef_ @ self.mean_
        self.n_labels_ = n_labels
        return self

    def decision_function(self, x: Array) -> FloatArray:
        """Logits ``(n, n_labels)``."""
        if not hasattr(self, "coef_"):
            raise NotFitted("LinearHead used before fit()")
        out: FloatArray = np.asarray(x, dtype=np.float64) @ self.coef_.T + self.intercept_
        return out

    def state(self) -> dict[str, Array]:
        """Learned arrays, for saving."""
        if not hasattr(self, "coef_"):
            raise NotFitted("LinearHead used before fit()")
        return {"coef": self.coef_, "intercept": self.intercept_}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: Mapping[str, Array]) -> LinearHead:
        head = cls(
            float(params["l2"]),
            n_labels=params["n_labels"],
            multi_label=bool(params["multi_label"]),
            standardize=bool(params["standardize"]),
            max_iter=int(params["max_iter"]),
        )
        head.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        head.intercept_ = np.asarray(arrays["intercept"], dtype=np.float64)
        head.n_labels_ = len(head.intercept_)
        return head


def _sample_weights(sample_weight: Array | None, n: int) -> FloatArray:
    if sample_weight is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InvalidInput("sample_weight must be n non-negative finite numbers, not all zero")
    out: FloatArray = w / w.sum()
    return out


class _Threads:
    def __init__(self, n: int) -> None:
        self.n = n
        self.before = 0

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        if self.before != self.n:  # already so: nothing to change (heads fitted in parallel threads)
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.before != self.n:
            torch.set_num_threads(self.before)


def torch_threads(n: int) -> _Threads:
    """Run a block with a fixed torch thread count (results depend on it at the last bit). Heads fitted
    in parallel threads must run inside one ``torch_threads(1)``: the count is global to the process."""
    return _Threads(n)
