"""Sufficient statistics: what one site contributes, and how pooled totals become results.

For an analysis on column x with public centre c (the middle of the declared range), a site
contributes ``n``, ``S = sum(x - c)`` and ``Q = sum((x - c)**2)`` over its matching rows with
x present; a kind uses only the prefix it needs (count: n; sum, mean: n, S; variance, std:
n, S, Q). Centring keeps Q well conditioned. For int columns the statistics are exact integers;
for float columns exact fractions of the values in fixed point (the rule of
:mod:`securecalc.core.local_stats`, which a database reproduces exactly).

Totals are added by an engine and finished here with exact rational arithmetic, so the only
error is the engine's own (none for MPC on int columns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from securecalc.core.local_stats import (
    Count,
    Fixed,
    LocalQuery,
    centred_moments,
    evaluate,
    moment_statistics,
)
from securecalc.core.plans import MAX_ROWS_PER_SITE, Number, SumPlan
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table
from securecalc.core.where import parse_where

if TYPE_CHECKING:  # annotations only: analyses imports the kinds, which import this module
    from securecalc.core.analyses import Analysis

#: number of statistics each kind needs
WIDTH = {"count": 1, "sum": 2, "mean": 2, "variance": 3, "std": 3}



@dataclass(frozen=True)
class StatLayout:
    """Shape and bounds of one analysis's statistics, known to every party in advance."""

    width: int
    integral: bool  # all statistics are exact integers (count, or an int column)
    max_abs_value: float  # the largest |x - c| a row may contribute (1 for counts)

    def bounds(self, max_rows: int = MAX_ROWS_PER_SITE) -> tuple[float, ...]:
        """Upper bounds of |statistic| at one site: n, |S|, Q."""
        a = self.max_abs_value
        return (max_rows, max_rows * a, max_rows * a * a)[: self.width]

    def plan(self, max_rows: int = MAX_ROWS_PER_SITE) -> SumPlan:
        """The same shape as a :class:`SumPlan` (exact bounds; n is always an exact count)."""
        a = Fraction(self.max_abs_value)
        scale = a if a > 0 else Fraction(1)
        return SumPlan(integral=(True, self.integral, self.integral)[: self.width],
                       bounds=tuple(max_rows * a**k for k in range(self.width)),
                       ckks_scales=tuple(scale**k for k in range(self.width)))


def layout_of(analysis: Analysis, schema: Schema) -> StatLayout:
    width = WIDTH[analysis.kind]
    if analysis.kind == "count" or analysis.column is None:
        return StatLayout(width=width, integral=True, max_abs_value=1.0)
    column = schema[analysis.column]
    return StatLayout(width=width, integral=column.type == "int",
                      max_abs_value=column.max_abs_centered)


def exact_int_sum(values: np.ndarray, power: int = 1) -> int:
    """Exact ``sum(v**power)`` of int64 values as a Python int; int64 chunks when safe."""
    if values.size == 0:
        return 0
    peak = int(np.max(np.abs(values))) ** power
    if peak == 0:
        return 0
    chunk = max(1, (2**62) // peak)
    if peak >= 2**62:  # a single term may not fit: exact Python integers
        return sum(int(v) ** power for v in values.tolist())
    total = 0
    for start in range(0, values.size, chunk):
        part = values[start:start + chunk]
        total += int(np.sum(part ** power if power != 1 else part, dtype=np.int64))
    return total


def local_statistics(analysis: Analysis, schema: Schema, table: Table,
                     mask: np.ndarray | None = None) -> tuple[Number, ...]:
    """This site's statistics for ``analysis`` (see the module docstring), exact integers
    and fractions by the rule of :mod:`securecalc.core.local_stats`.

    ``mask`` is the rows the filter keeps; by default the analysis's own filter is applied.
    """
    if mask is None:
        mask = parse_where(analysis.where, schema).evaluate(table)
    width = WIDTH[analysis.kind]
    present = (analysis.column,) if analysis.column is not None else ()
    if width == 1:
        n = evaluate(LocalQuery(present, (Count(),)), table, mask)[0]
        assert isinstance(n, int)
        return (n,)
    term = Fixed.of(schema[analysis.column or ""])
    raw = evaluate(LocalQuery(present, moment_statistics([term])), table, mask)
    return centred_moments([term], raw)[:width]


def add_statistics(parts: Sequence[Sequence[Number]]) -> tuple[Fraction, ...]:
    """Exact element-wise sum of several sites' statistics (the plaintext reference)."""
    return tuple(sum((Fraction(p[i]) for p in parts), Fraction(0)) for i in range(len(parts[0])))


def finish(analysis: Analysis, column: Column | None,
           totals: Sequence[Number]) -> tuple[float | int | None, int]:
    """Turn pooled statistics into ``(value, n)``; value is None when undefined (n too small)."""
    n = max(0, int(round(Fraction(totals[0]))))  # a noisy count may fall below 0
    if analysis.kind == "count":
        return n, n
    assert column is not None
    s = Fraction(totals[1])
    c = Fraction(column.center)
    if analysis.kind == "sum":
        total = s + n * c
        return (int(total) if column.type == "int" else float(total)), n
    if analysis.kind == "mean":
        return (float(c + s / n) if n else None), n
    if n < 2:
        return None, n
    q = Fraction(totals[2])
    variance = max(Fraction(0), (q - s * s / n) / (n - 1))
    if analysis.kind == "variance":
        return float(variance), n
    return math.sqrt(variance), n
