"""Exact bounds that size secure numbers: per-row bounds of centred values, CKKS divisors.

Everything here is exact (``Fraction`` or ``int``): column bounds and centres are floats, and
``Fraction(float)`` is their exact value, so a bound derived here never rounds down.
"""

from __future__ import annotations

from fractions import Fraction

from securecalc.core.plans import MAX_ROWS_PER_SITE
from securecalc.core.schema import Column

#: rows one site may hold (every per-row bound is multiplied by it)
ROWS = MAX_ROWS_PER_SITE


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
