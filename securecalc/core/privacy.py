"""Differential privacy: the discrete Laplace mechanism, with noise shares from every site.

An analysis that sets ``epsilon`` is released with noise added to every statistic it sums
(its :class:`~securecalc.core.plans.SumPlan` slots), before anything is secret-shared or
encrypted. The mechanism, per slot ``j`` of an analysis with ``w`` slots:

* **Sensitivity.** One patient row changes slot ``j`` by at most ``u_j``, the slot's per-row
  bound (``bounds[j] / MAX_ROWS_PER_SITE``: 1 for counts, ``A`` for a sum of values within
  ``A`` of the column's centre, ``A**2`` for a sum of squares). A row changes every slot of
  a moment kind, but only one cell of a histogram or a contingency table, so ``K`` (the
  slots one row can change) is ``w`` or 1 (:attr:`Kind.dp_row_slots`).
* **Noise.** Each site adds to slot ``j`` an independent draw of the discrete Laplace
  distribution ``P(z) ~ exp(-|z| / b_j)`` on the slot's grid (integers for counts and sums
  of int columns; ``2**-48``, the MPC fixed-point step, for float statistics), with
  ``b_j = K * u_j / epsilon``. Adding or removing one row changes the slots by at most
  ``sum_j |d_j| / b_j <= epsilon``, so one site's noise alone makes the release
  ``epsilon``-differentially private (Laplace mechanism, L1 sensitivity per slot).
* **Jointly generated, known to no one.** Every site draws its own share with a
  cryptographic generator and adds it to its input; the engines only ever see (MPC) or
  decrypt (CKKS) the noisy total. No party learns the total noise, and the guarantee holds
  against any coalition that leaves out one honest site, because that site's share alone
  suffices. The price: the total noise is the sum of ``m`` shares, about ``sqrt(2 m) * b_j``
  standard deviation per slot instead of ``sqrt(2) * b_j``.
* **Floating-point safe.** Draws are exact: the sampler of Canonne, Kamath and Steinke
  (2020) with rational arithmetic and integer randomness, so no floating-point artefact
  (Mironov 2012) can leak the value under the noise. The noise is added in exact arithmetic
  on the slot's grid.
* **Bounded shares.** A draw beyond ``NOISE_CAP_SCALES * b_j`` is drawn again (probability
  about ``exp(-64)`` per draw, a ``delta`` far below any data-size reciprocal), so the
  engines can size their numbers: the plan's bounds grow by the cap.

Everything downstream (cohort gates, small-cell suppression, finishing formulas) sees only
the noisy totals and is post-processing. Budgets are the nodes' business
(:mod:`securecalc.node.privacy_ledger`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from securecalc.core.encoding import FRACTION_BITS
from securecalc.core.plans import MAX_ROWS_PER_SITE, Number, SumPlan
from securecalc.errors import ConfigError

#: largest epsilon one analysis may ask for (beyond it the guarantee means little)
MAX_EPSILON = 10.0

#: a share is drawn again when it exceeds this many scales (probability about e**-64)
NOISE_CAP_SCALES = 64


class RandomSource(Protocol):
    def randrange(self, stop: int, /) -> int: ...


def parse_epsilon(value: object) -> float:
    """A validated epsilon (a number in ``(0, MAX_EPSILON]``); ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or not 0 < value <= MAX_EPSILON:
        raise ConfigError(f"must be a number in (0, {MAX_EPSILON:g}], got {value!r}",
                          field="epsilon")
    return float(value)


def exact(epsilon: float) -> Fraction:
    """Epsilon as the decimal it prints as (0.1 is 1/10)."""
    return Fraction(repr(float(epsilon)))


@dataclass(frozen=True)
class NoisePlan:
    """The noise one site adds to one analysis: per slot, the discrete Laplace scale and the
    grid, both in value units (``scales[j] / grids[j]`` is the scale in grid steps)."""

    epsilon: float
    scales: tuple[Fraction, ...]
    grids: tuple[Fraction, ...]

    @property
    def caps(self) -> tuple[Fraction, ...]:
        """Largest |share| a site adds per slot, in value units."""
        return tuple(NOISE_CAP_SCALES * s + g for s, g in zip(self.scales, self.grids,
                                                               strict=True))

    def std(self, parties: int) -> tuple[float, ...]:
        """Standard deviation of the total noise of ``parties`` shares, per slot."""
        out = []
        for s, g in zip(self.scales, self.grids, strict=True):
            x = float(g / s)  # tiny for a fine grid: 1 - exp(-x) by expm1, never 0
            out.append(float(g) * math.sqrt(parties * 2 * math.exp(-x)) / -math.expm1(-x))
        return tuple(out)


def noise_plan(plan: SumPlan, epsilon: float, row_slots: str) -> NoisePlan:
    """The noise for ``plan`` at ``epsilon``; ``row_slots``: ``"all"`` when one row can
    change every slot, ``"one"`` when it changes at most one (disjoint cells)."""
    if row_slots not in ("all", "one"):
        raise ValueError(f"row_slots must be 'all' or 'one', got {row_slots!r}")
    k = plan.width if row_slots == "all" else 1
    eps = exact(parse_epsilon(epsilon))
    scales = tuple(k * Fraction(b) / MAX_ROWS_PER_SITE / eps for b in plan.bounds)
    grids = tuple(Fraction(1) if integral else Fraction(1, 2**FRACTION_BITS)
                  for integral in plan.integral)
    return NoisePlan(float(epsilon), scales, grids)


def widened(plan: SumPlan, noise: NoisePlan) -> SumPlan:
    """``plan`` with room for a noise share in every slot (what the engines size for)."""
    bounds = tuple(Fraction(b) + c for b, c in zip(plan.bounds, noise.caps, strict=True))
    return SumPlan(plan.integral, bounds, plan.ckks_scales, plan.suppress_below)


def sample_noise(noise: NoisePlan, rng: RandomSource | None = None) -> tuple[Fraction, ...]:
    """One site's noise shares, per slot, on the slot's grid (exact)."""
    rng = rng or random.SystemRandom()
    out = []
    for scale, grid in zip(noise.scales, noise.grids, strict=True):
        steps = scale / grid
        cap = NOISE_CAP_SCALES * steps
        while True:
            z = discrete_laplace(steps, rng)
            if abs(z) <= cap:
                break
        out.append(z * grid)
    return tuple(out)


def add_noise(values: Sequence[Number], shares: Sequence[Fraction]) -> tuple[Fraction, ...]:
    """``values + shares`` exactly (integral slots stay integers: their shares are)."""
    return tuple(Fraction(v) + z for v, z in zip(values, shares, strict=True))


# -- exact sampling (Canonne, Kamath, Steinke 2020: "The Discrete Gaussian for Differential
#    Privacy", section 5) ---------------------------------------------------------------------

def _bernoulli(p: Fraction, rng: RandomSource) -> bool:
    return rng.randrange(p.denominator) < p.numerator


def bernoulli_exp(gamma: Fraction, rng: RandomSource) -> bool:
    """True with probability ``exp(-gamma)`` exactly, for rational ``gamma >= 0``."""
    while gamma > 1:
        if not bernoulli_exp(Fraction(1), rng):
            return False
        gamma -= 1
    k = 1
    while _bernoulli(gamma / k, rng):  # P(first failure at k) telescopes to exp(-gamma)
        k += 1
    return k % 2 == 1


def _geometric(scale: Fraction, rng: RandomSource) -> int:
    """``G >= 0`` with ``P(G = g)`` proportional to ``exp(-g / scale)``."""
    rate = 1 / scale
    s, t = rate.numerator, rate.denominator
    while True:
        u = rng.randrange(t)
        if bernoulli_exp(Fraction(u, t), rng):
            break
    v = 0
    while bernoulli_exp(Fraction(1), rng):
        v += 1
    return (v * t + u) // s


def discrete_laplace(scale: Fraction, rng: RandomSource) -> int:
    """An integer ``z`` with ``P(z)`` proportional to ``exp(-|z| / scale)`` (``scale > 0``)."""
    if scale <= 0:
        raise ValueError("the scale must be positive")
    while True:
        negative = rng.randrange(2) == 1
        g = _geometric(Fraction(scale), rng)
        if negative and g == 0:
            continue  # zero would otherwise be drawn twice as often
        return -g if negative else g


def describe(noise: NoisePlan, parties: int) -> str:
    """The note released with a noisy result."""
    std = ", ".join(f"{s:.3g}" for s in noise.std(parties))
    return (f"differentially private (epsilon = {noise.epsilon:g}): discrete Laplace noise "
            f"from each of {parties} sites; noise standard deviation per statistic: {std}")
