"""Pooled cross-product moments of centred terms: the SumPlan of ``n, S_j, C_jk``, one
site's exact input to it, and the released totals read back as :class:`Moments`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from securecalc.core.kinds.bounds import ROWS, scale, triangle
from securecalc.core.local_stats import Term, Value, centred_moments
from securecalc.core.plans import Number, SumPlan
from securecalc.core.statistics import exact_int_sum


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
