"""Helpers shared by the statistical kinds: option checks, exact bounds, design terms,
pooled cross-product moments and exact rational linear algebra.

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
    if lo is not None and value < lo or hi is not None and value > hi:
        raise option_error(f"must lie in [{lo:g}, {hi:g}], got {value!r}", key)
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
    names = column_list(raw, schema, key, numeric=False, min_length=1)
    for name in names:
        if name == outcome:
            raise option_error(f"lists the outcome {name!r} as a predictor", key)
        column = schema[name]
        if column.type == "category" and len(column.levels) < 2:
            raise option_error(f"category column {name!r} has a single level, so it cannot "
                               "be a predictor", key)
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

    def values(self, table: Table, keep: np.ndarray) -> np.ndarray:
        """int64 (integral terms) or float64 values on the rows ``keep``."""
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


def moment_local(columns: Sequence[np.ndarray], integral: Sequence[bool]) -> tuple[Number, ...]:
    """One site's ``n, S_j, C_jk`` (see :func:`moment_plan`) of centred term values.

    Integral terms give exact integers. Any product involving a float term is computed
    around the site's own means (two passes) and shifted back exactly:
    ``sum z_j z_k = sum (z_j - m_j)(z_k - m_k) + m_k S_j + m_j S_k - n m_j m_k``, with the
    same S_j the site releases, so the pooled centred cross-products keep their accuracy
    however far the data lie from the public centre.
    """
    n = len(columns[0]) if columns else 0
    p = len(columns)
    sums: list[Fraction | int] = []
    means: list[float] = []
    deviations: list[np.ndarray | None] = []
    for values, exact in zip(columns, integral, strict=True):
        s: Fraction | int = exact_int_sum(values) if exact else Fraction(float(np.sum(values)))
        sums.append(s)
        m = float(Fraction(s) / n) if n else 0.0
        means.append(m)
        deviations.append(None)
    out: list[Number] = [n, *sums]
    for j, k in triangle(p):
        if integral[j] and integral[k]:
            out.append(int_dot(columns[j], columns[k]))
            continue
        if n == 0:
            out.append(0.0)
            continue
        for i in (j, k):
            if deviations[i] is None:
                deviations[i] = columns[i].astype(np.float64) - means[i]
        dj, dk = deviations[j], deviations[k]
        assert dj is not None and dk is not None
        m_j, m_k = Fraction(means[j]), Fraction(means[k])
        centred = Fraction(float(np.sum(dj * dk)))
        out.append(centred + m_k * sums[j] + m_j * sums[k] - n * m_j * m_k)
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


# --------------------------------------------------------------------------- exact algebra

Matrix = list[list[Fraction]]


def inverse(matrix: Matrix) -> Matrix | None:
    """Exact inverse by Gauss-Jordan elimination; None when singular."""
    p = len(matrix)
    a = [[Fraction(v) for v in row] + [Fraction(int(i == j)) for j in range(p)]
         for i, row in enumerate(matrix)]
    for col in range(p):
        pivot = max(range(col, p), key=lambda r: abs(a[r][col]))
        if a[pivot][col] == 0:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        inv_p = 1 / a[col][col]
        a[col] = [v * inv_p for v in a[col]]
        for r in range(p):
            if r != col and a[r][col] != 0:
                f = a[r][col]
                a[r] = [v - f * w for v, w in zip(a[r], a[col], strict=True)]
    return [row[p:] for row in a]


def mat_vec(matrix: Matrix, vector: Sequence[Fraction]) -> list[Fraction]:
    return [sum((m * v for m, v in zip(row, vector, strict=True)), Fraction(0))
            for row in matrix]


#: a predictor whose variation left after regressing it on the earlier ones (1 - R^2) is
#: below this is treated as a linear combination of them
COLLINEAR_TOLERANCE = Fraction(1, 10**10)


def collinearity(gram: Matrix, names: Sequence[str]) -> list[str]:
    """Problems with a design's Gram matrix (index 0 = intercept): each predictor that is
    constant, or (within :data:`COLLINEAR_TOLERANCE`) a linear combination of the intercept
    and earlier accepted predictors. Exact arithmetic; an incremental LDL factorisation."""
    n = gram[0][0]
    if n <= 0:
        return ["there are no rows"]
    p = len(gram)
    # covariance about the pooled means: the intercept projected out
    cov = [[gram[j][k] - gram[0][j] * gram[0][k] / n for k in range(p)] for j in range(p)]
    accepted: list[int] = []
    lower: dict[tuple[int, int], Fraction] = {}  # L[i][a] for accepted a
    diag: list[Fraction] = []
    problems: list[str] = []
    for j in range(1, p):
        total = cov[j][j]
        if total <= COLLINEAR_TOLERANCE * gram[j][j]:
            problems.append(f"{names[j]!r} is constant in the pooled data (for an indicator: "
                            "the level is absent, or every row has it)")
            continue
        w: list[Fraction] = []  # L^{-1} cov[A, j]
        for a_pos, a in enumerate(accepted):
            w.append(cov[a][j] - sum((lower[(a, accepted[b])] * w[b] for b in range(a_pos)),
                                     Fraction(0)))
        residual = total - sum((wi * wi / d for wi, d in zip(w, diag, strict=True)),
                               Fraction(0))
        if residual <= COLLINEAR_TOLERANCE * total:
            # coefficients of predictor j on the accepted ones: L' c = D^{-1} w
            coef = [Fraction(0)] * len(accepted)
            for a_pos in range(len(accepted) - 1, -1, -1):
                a = accepted[a_pos]
                coef[a_pos] = w[a_pos] / diag[a_pos] - sum(
                    (lower[(accepted[b], a)] * coef[b] for b in range(a_pos + 1, len(accepted))),
                    Fraction(0))
            involved = [names[a] for a, c in zip(accepted, coef, strict=True)
                        if c * c * cov[a][a] > Fraction(1, 10**12) * total]
            with_ = ", ".join(repr(x) for x in involved) or "the intercept"
            problems.append(f"{names[j]!r} is (nearly) a linear combination of the intercept "
                            f"and {with_}" if involved else
                            f"{names[j]!r} is (nearly) constant")
            continue
        for a_pos, a in enumerate(accepted):
            lower[(j, a)] = w[a_pos] / diag[a_pos]
        accepted.append(j)
        diag.append(residual)
    return problems


__all__ = [
    "COLLINEAR_TOLERANCE", "Moments", "Term", "binary_column", "binary_values", "center",
    "collinearity", "design_terms", "half_range", "int_dot", "inverse", "is_number",
    "json_float", "level_list", "mat_vec", "moment_local", "moment_plan", "moment_width",
    "moments_from", "numeric_term", "optional_number", "predictor_list", "scale", "triangle",
]
