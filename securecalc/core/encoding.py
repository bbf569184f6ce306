"""How sufficient statistics are represented inside each secure engine.

MPC works over integers: integral statistics are shared as they are, float statistics as
fixed-point integers ``round(v * 2**FRACTION_BITS)``. The bound that sizes the secure integers
follows from the schema bounds and :data:`MAX_ROWS_PER_SITE`, so no total can overflow, and
each party checks its own inputs against it before sharing anything.

CKKS works over approximate reals: statistics are sent as floats and the decrypted totals of
integral statistics (counts, sums over int columns) are rounded back to integers.
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


def mpc_bound(layout: StatLayout, max_rows: int = MAX_ROWS_PER_SITE) -> int:
    """Largest |encoded statistic| one party may input."""
    return math.ceil(max(layout.bounds(max_rows))) * mpc_scale(layout) + 1


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


def ckks_encode(stats: Sequence[Number]) -> list[float]:
    return [float(v) for v in stats]


def ckks_decode(layout: StatLayout, values: Sequence[float]) -> tuple[Fraction, ...]:
    """Pooled statistics from decrypted CKKS values; integral ones are rounded to integers."""
    n = Fraction(round(values[0]))
    rest = [Fraction(round(v)) if layout.integral else Fraction(v) for v in values[1:]]
    return (n, *rest)
