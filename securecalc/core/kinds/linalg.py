"""The deterministic linear algebra of regressions: exact elimination of the intercept,
an LDL factorisation in pure-Python doubles, and collinearity checks.

Designs have an intercept. Its row and column are eliminated exactly (a Schur complement in
rational arithmetic: the centring about the pooled means, where cancellation would hurt);
the small, well-conditioned rest is solved in pure-Python IEEE doubles with ``math.fsum``.
No BLAS and no built-in ``sum`` of floats (whose algorithm changed in Python 3.12), so every
party computes bit-identical results on any platform, which iterative programs need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

Matrix = list[list[Fraction]]
FloatMatrix = list[list[float]]


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class LDL:
    """``K = L D L'`` of a symmetric positive definite float matrix (L unit lower)."""

    lower: FloatMatrix
    diag: list[float]

    @staticmethod
    def of(k: FloatMatrix) -> LDL | None:
        """The factorisation, or None when a pivot is not positive (singular)."""
        p = len(k)
        lower = [[0.0] * p for _ in range(p)]
        diag: list[float] = []
        for j in range(p):
            w: list[float] = []  # w_a = L[j][a] D[a]
            for a in range(j):
                w.append(k[j][a] - math.fsum(lower[a][b] * w[b] for b in range(a)))
                lower[j][a] = w[a] / diag[a]
            d = k[j][j] - math.fsum(w[a] * lower[j][a] for a in range(j))
            if not d > 0 or not math.isfinite(d):
                return None
            lower[j][j] = 1.0
            diag.append(d)
        return LDL(lower, diag)

    def solve(self, rhs: Sequence[float]) -> list[float]:
        p = len(self.diag)
        z: list[float] = []
        for i in range(p):
            z.append(rhs[i] - math.fsum(self.lower[i][j] * z[j] for j in range(i)))
        x = [0.0] * p
        for i in range(p - 1, -1, -1):
            x[i] = z[i] / self.diag[i] - math.fsum(self.lower[j][i] * x[j]
                                                  for j in range(i + 1, p))
        return x

    def quadratic(self, v: Sequence[float]) -> float:
        """``v' K^{-1} v``."""
        return dot(v, self.solve(v))

    def inverse_diagonal(self) -> list[float]:
        p = len(self.diag)
        return [self.solve([float(i == j) for i in range(p)])[j] for j in range(p)]


@dataclass(frozen=True)
class Partitioned:
    """A symmetric matrix ``[[h00, h0'], [h0, H11]]`` (index 0 = the intercept) with the
    intercept eliminated exactly: ``b = h0 / h00`` and ``K = H11 - h0 h0' / h00``."""

    h00: Fraction
    b: list[Fraction]
    K: FloatMatrix
    exact_K: Matrix

    @staticmethod
    def of(h: Matrix) -> Partitioned:
        h00 = Fraction(h[0][0])
        q = len(h) - 1
        b = [Fraction(h[0][j + 1]) / h00 for j in range(q)]
        exact = [[Fraction(h[j + 1][k + 1]) - Fraction(h[0][j + 1]) * b[k] for k in range(q)]
                 for j in range(q)]
        return Partitioned(h00, b, [[float(v) for v in row] for row in exact], exact)

    def solve(self, factor: LDL, g: Sequence[Fraction]) -> list[float]:
        """``H^{-1} g`` (the first entry for the intercept)."""
        g0 = Fraction(g[0])
        rest = factor.solve([float(Fraction(g[j + 1]) - bj * g0) for j, bj in enumerate(self.b)])
        x0 = float(g0 / self.h00) - dot([float(bj) for bj in self.b], rest)
        return [x0, *rest]

    def intercept_variance(self, factor: LDL, a: Sequence[Fraction]) -> float:
        """``a' H^{-1} a`` for ``a = (1, a_1, ...)``: ``1/h00 + (a_r - b)' K^{-1} (a_r - b)``."""
        v = [float(Fraction(aj) - bj) for aj, bj in zip(a[1:], self.b, strict=True)]
        return float(1 / self.h00) + factor.quadratic(v)


#: a predictor whose variation left after regressing it on the earlier ones (1 - R^2) is
#: below this is treated as a linear combination of them
COLLINEAR_TOLERANCE = 1e-10


def collinearity(part: Partitioned, raw_diagonal: Sequence[Fraction],
                 names: Sequence[str]) -> list[str]:
    """Problems with a design's predictors (intercept eliminated in ``part``): each one that
    is constant (its variance below the tolerance times its mean square ``raw_diagonal``),
    or a linear combination of the intercept and earlier accepted predictors (1 - R^2 below
    :data:`COLLINEAR_TOLERANCE`). Floats, deterministic; an incremental LDL factorisation."""
    q = len(names)
    if part.h00 <= 0:
        return ["there are no rows"]
    cov = part.K
    accepted: list[int] = []
    lower: dict[tuple[int, int], float] = {}  # L[j][a] for accepted a
    diag: list[float] = []
    problems: list[str] = []
    for j in range(q):
        total = cov[j][j]
        if part.exact_K[j][j] <= Fraction(COLLINEAR_TOLERANCE) * Fraction(raw_diagonal[j]):
            problems.append(f"{names[j]!r} is constant in the pooled data (for an indicator: "
                            "the level is absent, or every row has it)")
            continue
        w: list[float] = []  # L^{-1} cov[A, j]
        for a_pos, a in enumerate(accepted):
            w.append(cov[a][j] - math.fsum(lower[(a, accepted[b])] * w[b]
                                           for b in range(a_pos)))
        residual = total - math.fsum(wi * wi / d for wi, d in zip(w, diag, strict=True))
        if residual <= COLLINEAR_TOLERANCE * total:
            coef = [0.0] * len(accepted)  # predictor j on the accepted ones: L' c = D^{-1} w
            for a_pos in range(len(accepted) - 1, -1, -1):
                coef[a_pos] = w[a_pos] / diag[a_pos] - math.fsum(
                    lower[(accepted[b], accepted[a_pos])] * coef[b]
                    for b in range(a_pos + 1, len(accepted)))
            involved = [names[a] for a, c in zip(accepted, coef, strict=True)
                        if c * c * cov[a][a] > 1e-12 * total]
            problems.append(f"{names[j]!r} is (nearly) a linear combination of the intercept "
                            f"and {', '.join(repr(x) for x in involved)}" if involved else
                            f"{names[j]!r} is (nearly) constant")
            continue
        for a_pos, a in enumerate(accepted):
            lower[(j, a)] = w[a_pos] / diag[a_pos]
        accepted.append(j)
        diag.append(residual)
    return problems
