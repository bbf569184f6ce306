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

from securecalc.core.plans import MAX_ROWS_PER_SITE, Number, SumPlan
from securecalc.core.statistics import StatLayout

#: fractional bits of the fixed-point encoding of float statistics in MPC
FRACTION_BITS = 48

#: relative allowance for the rounding of float statistics, which numpy computes in float64
FLOAT_SLACK = Fraction(1, 2**20)

Shape = SumPlan | StatLayout


def as_plan(shape: Shape, max_rows: int = MAX_ROWS_PER_SITE) -> SumPlan:
    """A :class:`SumPlan` for either a plan or the moment kinds' :class:`StatLayout`."""
    return shape if isinstance(shape, SumPlan) else shape.plan(max_rows)


def _scales(plan: SumPlan) -> list[int]:
    return [1 if integral else 2**FRACTION_BITS for integral in plan.integral]


def mpc_scale(layout: StatLayout) -> int:
    """Fixed-point scale of a moment layout's non-count statistics."""
    return 1 if layout.integral else 2**FRACTION_BITS


def mpc_bound(shape: Shape, max_rows: int = MAX_ROWS_PER_SITE) -> int:
    """Largest |encoded value| one party may input, computed exactly.

    Float statistics get a small relative allowance for their float64 rounding.
    """
    plan = as_plan(shape, max_rows)
    best = 0
    for bound, integral, scale in zip(plan.bounds, plan.integral, _scales(plan), strict=True):
        exact = Fraction(bound)
        best = max(best, math.ceil(exact if integral else exact * (1 + FLOAT_SLACK) * scale))
    return best + 1


def mpc_encode(shape: Shape, values: Sequence[Number]) -> tuple[int, ...]:
    """Values as the integers one party secret-shares (integral slots exactly)."""
    plan = as_plan(shape)
    return tuple(int(v) if integral else round(Fraction(v) * scale)
                 for v, integral, scale in zip(values, plan.integral, _scales(plan), strict=True))


def mpc_decode(shape: Shape, totals: Sequence[int]) -> tuple[Fraction, ...]:
    """Pooled values from the revealed integer totals."""
    plan = as_plan(shape)
    return tuple(Fraction(t, scale) for t, scale in zip(totals, _scales(plan), strict=True))


def ckks_encode(shape: Shape, values: Sequence[Number]) -> list[float]:
    """Values as the floats one site encrypts (normalised; see the module docstring)."""
    plan = as_plan(shape)
    return [float(Fraction(v) / Fraction(s))
            for v, s in zip(values, plan.ckks_scales, strict=True)]


def ckks_decode(shape: Shape, values: Sequence[float]) -> tuple[Fraction, ...]:
    """Pooled values from decrypted CKKS values; integral ones are rounded to integers."""
    plan = as_plan(shape)
    out = []
    for v, s, integral in zip(values, plan.ckks_scales, plan.integral, strict=True):
        scaled = Fraction(v) * Fraction(s)
        out.append(Fraction(round(scaled)) if integral else scaled)
    return tuple(out)
