"""Pooled cross-product moments of centred terms: the SumPlan of ``n, S_j, C_jk``, one
site's exact input to it (from the raw sums of :mod:`securecalc.core.local_stats`), and the
released totals read back as :class:`Moments`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from securecalc.core.kinds.bounds import ROWS, scale, triangle
from securecalc.core.local_stats import Term, Value, centred_moments
from securecalc.core.plans import Number, SumPlan


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


def centred_blocks(terms: Sequence[Term], values: Sequence[Value],
                   blocks: int = 1) -> tuple[Any, ...]:
    """``values`` with its first ``blocks`` runs of raw moments of ``terms`` (see
    :func:`moment_statistics`) turned into ``n, S_j, C_jk`` about the centres; the rest
    (level counts) as they are."""
    width = moment_width(len(terms))
    out: list[Any] = []
    for b in range(blocks):
        out.extend(centred_moments(terms, values[b * width:(b + 1) * width]))
    return (*out, *values[blocks * width:])


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
