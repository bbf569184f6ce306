"""Helpers shared by the statistical kinds: option checks, exact bounds, design terms,
pooled cross-product moments and the (deterministic) linear algebra of regressions.

Everything that sizes a secure number is exact (``Fraction`` or ``int``): column bounds and
centres are floats, and ``Fraction(float)`` is their exact value, so a bound derived here
never rounds down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from securecalc.core.kinds.base import _declared, column_list, option_error
from securecalc.core.limits import PREDICTORS
from securecalc.core.plans import MAX_ROWS_PER_SITE, Number, SumPlan
from securecalc.core.schema import Column, Schema
from securecalc.core.statistics import exact_int_sum
from securecalc.core.table import Table

ROWS = MAX_ROWS_PER_SITE

# --------------------------------------------------------------------------- options


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def level_list(raw: Mapping[str, Any], key: str, column: Column, *,
               length: int | None = None) -> list[str]:
    """A list of declared, distinct levels of ``column`` (exactly ``length`` if given)."""
    levels = raw.get(key)
    what = f"a list of {length} levels" if length else "a list of levels"
    if not isinstance(levels, list) or not levels or \
            not all(isinstance(level, str) for level in levels):
        raise option_error(f"needs {what} of column {column.name!r}", key)
    if length is not None and len(levels) != length:
        raise option_error(f"needs {what} of column {column.name!r}, got {len(levels)}", key)
    if len(set(levels)) != len(levels):
        raise option_error("lists a level twice", key)
    for level in levels:
        if level not in column.levels:
            known = ", ".join(repr(x) for x in column.levels)
            raise option_error(f"unknown level {level!r} of column {column.name!r} "
                               f"(declared: {known})", key)
    return list(levels)


def optional_number(raw: Mapping[str, Any], key: str, default: Any, *, positive: bool = True,
                    whole: bool = False, lo: float | None = None,
                    hi: float | None = None) -> Any:
    """An optional number (kept as written); ``default`` when absent."""
    if key not in raw:
        return default
    value = raw[key]
    if not is_number(value):
        raise option_error(f"must be a finite number, got {value!r}", key)
    if whole and not float(value).is_integer():
        raise option_error(f"must be a whole number, got {value!r}", key)
    if positive and value <= 0:
        raise option_error(f"must be positive, got {value!r}", key)
    if lo is not None and value < lo:
        raise option_error(f"must be at least {lo:g}, got {value!r}", key)
    if hi is not None and value > hi:
        raise option_error(f"must be at most {hi:g}, got {value!r}", key)
    return value


def binary_column(raw: Mapping[str, Any], schema: Schema, key: str) -> str:
    """An outcome column: int with bounds within [0, 1], or a category with two levels
    (the second level counts as 1)."""
    name = raw.get(key)
    if not isinstance(name, str) or not name.strip():
        raise option_error(f"must name a column (a non-empty string), got {name!r}", key)
    column = _declared(schema, name, key)
    if column.type == "category":
        if len(column.levels) != 2:
            raise option_error(f"needs a 0/1 outcome: category column {name!r} has "
                               f"{len(column.levels)} levels, not 2", key)
        return name
    assert column.min is not None and column.max is not None
    if column.type != "int" or column.min < 0 or column.max > 1:
        raise option_error(f"needs a 0/1 outcome: an int column with bounds within [0, 1] or "
                           f"a two-level category; {name!r} is {column.type} "
                           f"[{column.min:g}, {column.max:g}]", key)
    return name


def binary_values(table: Table, schema: Schema, name: str, keep: np.ndarray) -> np.ndarray:
    """0/1 int64 values of an outcome column (see :func:`binary_column`) on ``keep``."""
    values = table.column(name).values[keep]
    if schema[name].type == "category":
        return (values == 1).astype(np.int64)
    return values.astype(np.int64)


def predictor_list(raw: Mapping[str, Any], schema: Schema, key: str, *,
                   outcome: str) -> list[str]:
    """Predictor columns: numeric, or category with at least two levels; not the outcome."""
    PREDICTORS.check_length(raw.get(key), key)
    names = column_list(raw, schema, key, numeric=False, min_length=1)
    for name in names:
        if name == outcome:
            raise option_error(f"lists the outcome {name!r} as a predictor", key)
        column = schema[name]
        if column.type == "category" and len(column.levels) < 2:
            raise option_error(f"category column {name!r} has a single level, so it cannot "
                               "be a predictor", key)
    PREDICTORS.check(sum(len(schema[n].levels) - 1 if schema[n].type == "category" else 1
                         for n in names), key, hint="a category counts one term per level "
                     "after the first")
    return names


# --------------------------------------------------------------------------- exact bounds


def center(column: Column) -> Fraction:
    return Fraction(column.center)


def half_range(column: Column) -> Fraction:
    """Exact largest ``|x - center|`` over the declared range (A)."""
    assert column.min is not None and column.max is not None
    c = center(column)
    return max(abs(Fraction(column.min) - c), abs(Fraction(column.max) - c))


def scale(a: Fraction) -> Fraction:
    """A CKKS divisor from a bound per row (1 when the bound is 0)."""
    return a if a > 0 else Fraction(1)


def triangle(p: int) -> list[tuple[int, int]]:
    """Index pairs (j, k), j <= k, row by row: the upper triangle of a p x p matrix."""
    return [(j, k) for j in range(p) for k in range(j, p)]


def json_float(value: Any) -> float | None:
    """A float, or None when it is not finite."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


# --------------------------------------------------------------------------- design terms


@dataclass(frozen=True)
class Term:
    """One column of a design: a centred numeric column or a 0/1 level indicator."""

    name: str
    column: str
    level: int | None  # code of the level for an indicator
    center: Fraction  # subtracted from the value (0 for indicators)
    half_range: Fraction  # largest |value - center|
    integral: bool

    def moment_input(self, table: Table, keep: np.ndarray) -> tuple[np.ndarray, bool, Fraction]:
        """``(values, integral, shift)`` for :func:`moment_local`: float columns raw, so
        that the centring is done exactly there."""
        if self.integral:
            return self.values(table, keep), True, Fraction(0)
        return table.column(self.column).values[keep].astype(np.float64), False, self.center

    def values(self, table: Table, keep: np.ndarray) -> np.ndarray:
        """Centred int64 (integral terms) or float64 values on the rows ``keep``."""
        raw = table.column(self.column).values[keep]
        if self.level is not None:
            return (raw == self.level).astype(np.int64)
        if self.integral:
            return raw.astype(np.int64) - np.int64(int(self.center))
        return raw.astype(np.float64) - float(self.center)


def numeric_term(column: Column) -> Term:
    return Term(column.name, column.name, None, center(column), half_range(column),
                column.type == "int")


def design_terms(schema: Schema, names: Sequence[str]) -> list[Term]:
    """Numeric columns centred at their public centre; each category expands to indicators
    of its levels after the first (the reference), named ``column[level]``."""
    terms: list[Term] = []
    for name in names:
        column = schema[name]
        if column.type == "category":
            terms.extend(Term(f"{name}[{level}]", name, code, Fraction(0), Fraction(1), True)
                         for code, level in enumerate(column.levels) if code > 0)
        else:
            terms.append(numeric_term(column))
    return terms


# --------------------------------------------------------------------------- moments


def moment_width(p: int) -> int:
    return 1 + p + p * (p + 1) // 2


def moment_plan(half_ranges: Sequence[Fraction], integral: Sequence[bool]) -> SumPlan:
    """Slots ``n, S_1..S_p, C_jk (j <= k)`` with ``S_j = sum z_j`` and ``C_jk = sum z_j z_k``
    over centred terms z; |z_j| <= A_j per row gives the bounds."""
    p = len(half_ranges)
    flags: list[bool] = [True]
    bounds: list[Number] = [ROWS]
    scales: list[Number] = [1]
    for a, i in zip(half_ranges, integral, strict=True):
        flags.append(i)
        bounds.append(ROWS * a)
        scales.append(scale(a))
    for j, k in triangle(p):
        flags.append(integral[j] and integral[k])
        bounds.append(ROWS * half_ranges[j] * half_ranges[k])
        scales.append(scale(half_ranges[j]) * scale(half_ranges[k]))
    return SumPlan(tuple(flags), tuple(bounds), tuple(scales))


def int_dot(a: np.ndarray, b: np.ndarray) -> int:
    """Exact ``sum(a * b)`` of int64 arrays as a Python int."""
    if a.size == 0:
        return 0
    peak = int(np.max(np.abs(a))) * int(np.max(np.abs(b)))
    if peak == 0:
        return 0
    if peak >= 2**62:
        return sum(int(x) * int(y) for x, y in zip(a.tolist(), b.tolist(), strict=True))
    chunk = max(1, (2**62) // peak)
    total = 0
    for start in range(0, a.size, chunk):
        total += int(np.dot(a[start:start + chunk], b[start:start + chunk]))
    return total


def moment_local(columns: Sequence[tuple[np.ndarray, bool, Fraction]]) -> tuple[Number, ...]:
    """One site's ``n, S_j, C_jk`` (see :func:`moment_plan`) of centred terms.

    ``columns``: per term ``(values, integral, shift)``; the term is ``values - shift``.
    Integral terms come already centred (int64, shift 0) and their sums and products are exact
    integers. Any sum or product involving a float term is computed around the site's own
    means (two passes) and shifted back to the public centre in exact arithmetic: with
    ``d = x - m`` and ``e = m - shift``, ``S = sum d + n e`` and
    ``C_jk = sum d_j d_k + e_k sum d_j + e_j sum d_k + n e_j e_k``. The site's pooled
    contribution to ``C_jk - S_j S_k / n`` is then ``sum d_j d_k - sum d_j sum d_k / n``:
    as accurate as a local two-pass covariance, however far the data lie from the centre.
    """
    n = len(columns[0][0]) if columns else 0
    p = len(columns)
    devsum: list[Fraction] = []  # sum d_j (exact for integral terms)
    offset: list[Fraction] = []  # e_j
    deviations: list[np.ndarray] = []
    sums: list[Number] = []
    for values, integral, shift in columns:
        if n == 0:
            devsum.append(Fraction(0))
            offset.append(Fraction(0))
            deviations.append(np.empty(0))
            sums.append(0)
            continue
        if integral:
            total = exact_int_sum(values)
            m = float(Fraction(total, n))
            d = values.astype(np.float64) - m
            devsum.append(total - n * Fraction(m))
            sums.append(total)
        else:
            x = values.astype(np.float64)
            m = float(np.mean(x))
            m += float(np.mean(x - m))
            d = x - m
            devsum.append(Fraction(float(np.sum(d))))
        offset.append(Fraction(m) - shift)
        deviations.append(d)
        if not integral:
            sums.append(devsum[-1] + n * offset[-1])
    out: list[Number] = [n, *sums]
    for j, k in triangle(p):
        if columns[j][1] and columns[k][1]:
            out.append(int_dot(columns[j][0], columns[k][0]))
        elif n == 0:
            out.append(0)
        else:
            centred = Fraction(float(np.sum(deviations[j] * deviations[k])))
            out.append(centred + offset[k] * devsum[j] + offset[j] * devsum[k]
                       + n * offset[j] * offset[k])
    return tuple(out)


@dataclass(frozen=True)
class Moments:
    """Pooled ``n``, sums ``S`` and cross-products ``C`` (exact rationals)."""

    n: int
    S: list[Fraction]
    C: list[list[Fraction]]

    def covariance(self, j: int, k: int) -> Fraction:
        """Centred cross-product about the pooled means: C_jk - S_j S_k / n."""
        return self.C[j][k] - self.S[j] * self.S[k] / self.n


def moments_from(released: Sequence[Any], p: int, offset: int = 0) -> Moments:
    values = [Fraction(v) for v in released[offset:offset + moment_width(p)]]
    n = int(round(values[0]))
    sums = values[1:1 + p]
    cross = [[Fraction(0)] * p for _ in range(p)]
    for (j, k), v in zip(triangle(p), values[1 + p:], strict=True):
        cross[j][k] = cross[k][j] = v
    return Moments(n, sums, cross)


# --------------------------------------------------------------------------- linear algebra
#
# Designs have an intercept. Its row and column are eliminated exactly (a Schur complement in
# rational arithmetic: the centring about the pooled means, where cancellation would hurt);
# the small, well-conditioned rest is solved in pure-Python IEEE doubles with ``math.fsum``.
# No BLAS and no built-in ``sum`` of floats (whose algorithm changed in Python 3.12), so every
# party computes bit-identical results on any platform, which iterative programs need.

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


__all__ = [
    "COLLINEAR_TOLERANCE", "LDL", "Moments", "Partitioned", "Term", "binary_column",
    "binary_values", "center", "collinearity", "design_terms", "dot", "half_range", "int_dot",
    "is_number", "json_float", "level_list", "moment_local", "moment_plan", "moment_width",
    "moments_from", "numeric_term", "optional_number", "predictor_list", "scale", "triangle",
]
