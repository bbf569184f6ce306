"""What an analysis asks of an engine, whichever engine runs it.

Three shapes cover the catalogue:

* :class:`SumPlan`: every site contributes a vector of numbers and the engine releases the
  element-wise totals (optionally withholding counts below a threshold). Most kinds reduce to
  this: moments, cross-products, contingency tables, histograms, survival counts.
* :class:`SearchPlan`: order statistics (quantiles, min, max) by a k-ary search over counts
  of values below thresholds, revealing only the search's comparison bits. MPC only; CKKS
  answers it with a fine histogram instead (see the kinds).
* :class:`IterativePlan`: rounds of sums whose inputs depend on the totals released by the
  previous rounds (Newton's method for logistic regression). The program is pure and
  deterministic, so every party derives the same next round from the same released totals.

Every per-slot ``bound`` is the largest absolute value one site may contribute in that slot
when it holds at most :data:`MAX_ROWS_PER_SITE` rows; the secure engines size their numbers
from these bounds, and sites check their inputs against them before anything is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol, runtime_checkable

#: rows one site may hold; with the schema bounds this bounds every statistic
MAX_ROWS_PER_SITE = 2**31

Number = int | float | Fraction


@dataclass(frozen=True)
class SumPlan:
    """Each site contributes ``width`` numbers; the engine releases their totals.

    ``integral[i]``: slot i is an exact integer at every site (counts, sums of int columns).
    ``bounds[i]``: |slot i| at one site never exceeds this.
    ``ckks_scales[i]``: a public divisor applied before CKKS encryption so every slot is of
    the order of a row count (CKKS error grows with the largest value in a ciphertext).
    ``suppress_below``: when > 0, every slot is a count and totals below it are withheld:
    the engine reveals only that they are small (MPC compares securely; CKKS withholds them
    at the coordinator before release).
    """

    integral: tuple[bool, ...]
    bounds: tuple[Number, ...]
    ckks_scales: tuple[Number, ...]
    suppress_below: int = 0

    def __post_init__(self) -> None:
        if not (len(self.integral) == len(self.bounds) == len(self.ckks_scales)):
            raise ValueError("integral, bounds and ckks_scales must have one entry per slot")
        if self.suppress_below and not all(self.integral):
            raise ValueError("only counts can be suppressed")

    @property
    def width(self) -> int:
        return len(self.integral)

    @staticmethod
    def counts(width: int, suppress_below: int = 0) -> SumPlan:
        """``width`` row counts."""
        return SumPlan((True,) * width, (float(MAX_ROWS_PER_SITE),) * width, (1.0,) * width,
                       suppress_below)

    @staticmethod
    def concat(plans: Sequence[SumPlan]) -> SumPlan:
        """Several plans side by side (no suppression)."""
        return SumPlan(tuple(i for p in plans for i in p.integral),
                       tuple(b for p in plans for b in p.bounds),
                       tuple(s for p in plans for s in p.ckks_scales))


@dataclass(frozen=True)
class SearchPlan:
    """Order statistics of one column by search over pooled counts.

    For each ``probs[j]`` the engine finds the smallest grid point ``x`` in
    ``lo, lo + resolution, ..., hi`` with ``count(values <= x) >= max(1, ceil(p * N))``
    (numpy's ``inverted_cdf``; p = 0 gives the minimum, p = 1 the maximum). Sites contribute
    their counts per grid point; the pooled count N is released, as is each comparison's outcome.
    """

    lo: float
    hi: float
    resolution: float
    probs: tuple[float, ...]
    arity: int = 0  # 0: the engine's choice, search_arity(grid_points, search_splits(parties))
    #: N is released only if it reaches this (decided securely before N is opened)
    min_n: int = 1
    #: a probability is released only if its rank is :func:`rank_releasable` with this
    min_rank: int = 1

    @property
    def grid_points(self) -> int:
        return int(round((self.hi - self.lo) / self.resolution)) + 1


def rank_releasable(p: float, rank: int, n: int, min_rank: int) -> bool:
    """Whether the p-quantile of ``n`` values, the ``rank``-th smallest, rests on enough
    patients: at least ``min_rank`` values at or below it and at or above it
    (``min_rank <= rank <= n - min_rank + 1``). The extremes p = 0 and p = 1 (min and max)
    are single patients' values by definition; node policy (``allow_extremes``) decides them.
    """
    return p in (0.0, 1.0) or min_rank <= rank <= n - min_rank + 1


#: most comparisons per probability in one iteration of a k-ary search: each iteration costs
#: about 8 rounds, each comparison about 0.5 ms of CPU per party (see the MPC ``steps.py``)
MAX_SEARCH_SPLITS = 64

#: the same cap for few parties, where a comparison is cheap: two iterations for 10**4 points
WIDE_SEARCH_SPLITS = 100

#: most parties for which a search takes :data:`WIDE_SEARCH_SPLITS`
WIDE_SEARCH_PARTIES = 5


def search_splits(parties: int) -> int:
    """The split cap for ``parties`` parties: a comparison's CPU and bytes grow with the
    number of parties, its rounds do not, so few parties afford fewer, wider iterations."""
    return WIDE_SEARCH_SPLITS if parties <= WIDE_SEARCH_PARTIES else MAX_SEARCH_SPLITS


def search_arity(n_points: int, max_splits: int = MAX_SEARCH_SPLITS) -> int:
    """The arity of a k-ary search over ``n_points``: the fewest iterations ``I`` with at most
    ``max_splits`` split points per interval, then the smallest arity that needs only ``I``
    (``ceil(n_points ** (1 / I))``, fewest comparisons): 10**4 points: 22 (3 iterations of 21
    comparisons per probability); 10**3: 32 (2); up to 65 points: one iteration."""
    if n_points <= 2:
        return 2
    iterations = 1
    while (max_splits + 1) ** iterations < n_points:
        iterations += 1
    arity: int = max(2, round(n_points ** (1 / iterations)))
    while arity ** iterations < n_points:
        arity += 1
    while arity > 2 and (arity - 1) ** iterations >= n_points:
        arity -= 1
    return arity


@dataclass(frozen=True)
class Gates:
    """Slots of an analysis's SumPlan (an iterative plan's first round) that decide whether
    anything of it is released: each ``cohort`` total must reach the study's ``min_cohort``
    and each ``cells`` total must be 0 or at least ``min_cell_count``. Engines decide all of
    them at once and reveal only pass or fail (MPC: inside the computation)."""

    cohort: tuple[int, ...] = ()
    cells: tuple[int, ...] = ()
    min_cell_count: int = 1

    def __bool__(self) -> bool:
        return bool(self.cohort or self.cells)

    def passes(self, totals: Sequence[Number], min_cohort: int) -> bool:
        """Whether plain ``totals`` pass (the coordinator's check on CKKS): all or nothing, so
        no released number sits beside a withheld one it could be subtracted from."""
        return all(totals[i] >= min_cohort for i in self.cohort) and all(
            totals[i] == 0 or totals[i] >= self.min_cell_count for i in self.cells)


@runtime_checkable
class IterativeProgram(Protocol):
    """A deterministic multi-round computation over released sums (pure; picklable).

    Every party holds the same program and the same public state; each round it contributes
    ``local(state, data)`` under ``round_plan(state)``, the engine releases the totals, and
    ``advance`` derives the next state. ``done(state)`` ends the loop; ``max_rounds`` bounds it.
    """

    @property
    def max_rounds(self) -> int:
        """Most rounds the program runs."""

    def initial_state(self) -> Any: ...

    def round_plan(self, state: Any) -> SumPlan: ...

    def local(self, state: Any, data: Any) -> tuple[Number, ...]: ...

    def advance(self, state: Any, totals: Sequence[Fraction]) -> Any: ...

    def done(self, state: Any) -> bool: ...


@dataclass(frozen=True)
class IterativePlan:
    program: IterativeProgram


Plan = SumPlan | SearchPlan | IterativePlan
