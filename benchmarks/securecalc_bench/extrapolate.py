"""Fitting measured costs to a cost model and extrapolating them to larger inputs.

A model is a few basis functions of the input size N; the fit is least squares with
non-negative coefficients (the best of all subsets of bases, so 2-3 points suffice). Every
extrapolated figure is flagged as such wherever it is reported.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Basis = Callable[[float], float]


def _log2sq(n: float) -> float:
    return math.log2(max(n, 2.0)) ** 2


#: task -> (description, basis functions of N = total rows over all parties)
MODELS: dict[str, tuple[str, tuple[Basis, ...]]] = {
    "linear": ("a + b*N", (lambda n: 1.0, lambda n: n)),
    "quadratic": ("a*N + b*N^2", (lambda n: n, lambda n: n * n)),
    "sort": ("a*log2(N)^2 + b*N*log2(N)^2", (_log2sq, lambda n: n * _log2sq(n))),
}


@dataclass(frozen=True)
class Fit:
    model: str
    coefficients: tuple[float, ...]

    def predict(self, n: float) -> float:
        bases = MODELS[self.model][1]
        return float(sum(c * f(n) for c, f in zip(self.coefficients, bases, strict=True)))

    @property
    def formula(self) -> str:
        return MODELS[self.model][0]


def fit(model: str, sizes: Sequence[float], seconds: Sequence[float]) -> Fit:
    """Non-negative least-squares fit of ``seconds`` against the model's bases at ``sizes``."""
    bases = MODELS[model][1]
    a = np.array([[f(n) for f in bases] for n in sizes])
    y = np.asarray(seconds, dtype=float)
    best: tuple[float, tuple[float, ...]] | None = None
    for k in range(1, len(bases) + 1):
        for subset in itertools.combinations(range(len(bases)), k):
            coef, *_ = np.linalg.lstsq(a[:, subset], y, rcond=None)
            if np.any(coef < 0):
                continue
            full = [0.0] * len(bases)
            for i, c in zip(subset, coef, strict=True):
                full[i] = float(c)
            residual = float(np.sum((a @ np.array(full) - y) ** 2))
            if best is None or residual < best[0] - 1e-12 * max(1.0, float(y @ y)):
                best = (residual, tuple(full))
    if best is None:
        raise ValueError("no non-negative fit")
    return Fit(model, best[1])


__all__ = ["MODELS", "Fit", "fit"]
