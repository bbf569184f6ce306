"""How sufficient statistics are represented inside each secure engine.

MPC works over integers: integral statistics are shared as they are, float statistics as
fixed-point integers ``round(v * 2**FRACTION_BITS)``. The bound that sizes the secure integers
follows from the schema bounds and :data:`MAX_ROWS_PER_SITE`, so no total can overflow, and
each party checks its own inputs against it before sharing anything.

CKKS works over approximate reals. Its absolute error in every slot grows with the largest
value packed in the same ciphertext, so each statistic is divided by a public power of its
column's bound (n by 1, S by A, Q by A**2, where A is the largest |x - c|): every slot then
holds a number of the order of its row count. Decrypted totals are scaled back, and those of
integral statistics (counts, sums over int columns) are rounded to integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from securecalc.core.statistics import MAX_ROWS_PER_SITE, Number, StatLayout

#: fractional bits of the fixed-point encoding of float statistics in MPC
FRACTION_BITS = 48


def mpc_scale(layout: StatLayout) -> int:
    return 1 if layout.integral else 2**FRACTION_BITS


#: relative allowance for the rounding of float statistics, which numpy computes in float64
FLOAT_SLACK = Fraction(1, 2**20)


def mpc_bound(layout: StatLayout, max_rows: int = MAX_ROWS_PER_SITE) -> int:
    """Largest |encoded statistic| one party may input.

    Computed exactly (the float product of :meth:`StatLayout.bounds` can round below
    ``max_rows * a**2``); float statistics get a small relative allowance for their rounding.
    """
    a = Fraction(layout.max_abs_value)
    exact = max(max_rows * a**k for k in range(layout.width))
    if layout.integral:
        return math.ceil(exact) + 1
    return math.ceil(exact * (1 + FLOAT_SLACK) * mpc_scale(layout)) + 1


def mpc_encode(layout: StatLayout, stats: Sequence[Number]) -> tuple[int, ...]:
    """Statistics as the integers one party secret-shares (n is always exact)."""
    scale = mpc_scale(layout)
    encoded = [int(stats[0])]
    for value in stats[1:]:
        encoded.append(int(value) if layout.integral else round(Fraction(value) * scale))
    return tuple(encoded)


def mpc_decode(layout: StatLayout, totals: Sequence[int]) -> tuple[Fraction, ...]:
    """Pooled statistics from the revealed integer totals."""
    scale = mpc_scale(layout)
    return (Fraction(totals[0]), *(Fraction(t, scale) for t in totals[1:]))


def _ckks_scales(layout: StatLayout) -> list[Fraction]:
    a = Fraction(layout.max_abs_value) if layout.max_abs_value > 0 else Fraction(1)
    return [a**k for k in range(layout.width)]


def ckks_encode(layout: StatLayout, stats: Sequence[Number]) -> list[float]:
    """Statistics as the floats one site encrypts (normalised; see the module docstring)."""
    return [float(Fraction(v) / s) for v, s in zip(stats, _ckks_scales(layout), strict=True)]


def ckks_decode(layout: StatLayout, values: Sequence[float]) -> tuple[Fraction, ...]:
    """Pooled statistics from decrypted CKKS values; integral ones are rounded to integers."""
    scaled = [Fraction(v) * s for v, s in zip(values, _ckks_scales(layout), strict=True)]
    n = Fraction(round(scaled[0]))
    rest = [Fraction(round(v)) if layout.integral else v for v in scaled[1:]]
    return (n, *rest)
